#!/usr/bin/env python3
"""A complete Autonomos task agent in Python, standard library only.

Run it under Autonomos with `protocol = "jsonrpc"` (see
docs/agent-protocol.md). It reads JSON-RPC 2.0 messages, one per line, on
stdin and answers on stdout; anything for people goes to stderr (the log).

What it does with a task's input (a JSON object; anything else is echoed):
  {"sleep": 0.5}         works that long first, sending progress
                         ({"sleep": {"0": 0.01, "1": 0.05}}: per replica)
  {"fail": "why"}        answers with an error (retried by the daemon)
  {"fail_final": "why"}  an error the daemon must not retry
  {"refuse": "why"}      refuses the task (-32010: it ends "rejected")
  {"noise": "text"}      first prints text on stdout, not JSON-RPC (it is
                         logged and counted; the agent keeps working)
  {"hang": true}         stops reading stdin for good, process alive (a hung
                         agent: the daemon's pings go unanswered)
  {"delegate": {...}}    hands work to another agent through the daemon's
                         queue (`task.submit` with these params, e.g.
                         {"skill": "echo", "input": 1}), waits for its
                         `task.finished`, and answers with what it heard
anything else: the result is {"echo": input, "replica": N, "context_new": b}.
With TASK_AGENT_START_DELAY=S in its environment it first works S seconds
before announcing itself (a cold start: a model loading).
Several tasks run at once (one thread each), up to the agent's concurrency.
"""

import json
import os
import sys
import threading
import time

REPLICA = os.environ.get("AUTONOMOS_REPLICA", "0")
out_lock = threading.Lock()
canceled = set()
# Requests this agent made to the daemon, by JSON-RPC id: (event, answer).
asked = {}
# Delegated tasks' ends, by task id: (event, params).
finished = {}
ids = iter(range(1, 1 << 62))


def send(msg):
    """One JSON-RPC message per line; one writer at a time."""
    line = json.dumps(msg, separators=(",", ":"))
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(text):
    print(f"[task-agent {REPLICA}] {text}", file=sys.stderr, flush=True)


def delegate(params):
    """task.submit to the daemon; then wait for that task's task.finished."""
    rid = f"sub-{next(ids)}"
    done = threading.Event()
    asked[rid] = [done, None]
    send({"jsonrpc": "2.0", "id": rid, "method": "task.submit", "params": params})
    done.wait(30)
    answer = asked.pop(rid)[1] or {}
    if "error" in answer:
        return {"submit_error": answer["error"]["message"]}
    sub = answer["result"]["id"]
    ended = finished.setdefault(sub, [threading.Event(), None])
    ended[0].wait(60)
    return {"delegated": finished.pop(sub)[1]}


def run(req_id, task):
    tid, inp = task["id"], task.get("input")
    if isinstance(inp, dict) and "delegate" in inp:
        send({"jsonrpc": "2.0", "id": req_id, "result": delegate(inp["delegate"])})
        return
    if isinstance(inp, dict) and "sleep" in inp:
        secs = inp["sleep"]
        if isinstance(secs, dict):
            secs = secs.get(REPLICA, 0)
        steps = 5
        for i in range(steps):
            if tid in canceled:
                log(f"{tid} canceled")
                return  # a canceled task needs no answer
            time.sleep(float(secs) / steps)
            send({"jsonrpc": "2.0", "method": "task.progress",
                  "params": {"id": tid, "fraction": (i + 1) / steps, "message": f"step {i + 1}"}})
    if isinstance(inp, dict) and "noise" in inp:
        with out_lock:
            sys.stdout.write(str(inp["noise"]) + "\n")
            sys.stdout.flush()
    if isinstance(inp, dict) and "refuse" in inp:
        send({"jsonrpc": "2.0", "id": req_id,
              "error": {"code": -32010, "message": str(inp["refuse"])}})
    elif isinstance(inp, dict) and "fail_final" in inp:
        send({"jsonrpc": "2.0", "id": req_id,
              "error": {"code": 1, "message": str(inp["fail_final"]), "data": {"retryable": False}}})
    elif isinstance(inp, dict) and "fail" in inp:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": 1, "message": str(inp["fail"])}})
    else:
        send({"jsonrpc": "2.0", "id": req_id,
              "result": {"echo": inp, "replica": int(REPLICA), "context_new": task.get("context_new")}})


def main():
    running = []
    log("started")
    time.sleep(float(os.environ.get("TASK_AGENT_START_DELAY", "0")))
    # What it announces: skills it offers, and (optionally) its concurrency.
    ready = json.loads(os.environ.get("TASK_AGENT_READY", '{"skills": ["echo"]}'))
    send({"jsonrpc": "2.0", "method": "agent.ready", "params": ready})
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            log(f"not JSON: {line.strip()[:80]}")
            continue
        method = msg.get("method")
        if method is None and msg.get("id") in asked:
            entry = asked[msg["id"]]
            entry[1] = msg
            entry[0].set()
        elif method == "task.finished":
            entry = finished.setdefault(msg["params"]["id"], [threading.Event(), None])
            entry[1] = msg["params"]
            entry[0].set()
        elif method == "ping":
            # The daemon's heartbeat probe: any answer shows it alive.
            send({"jsonrpc": "2.0", "id": msg.get("id"), "result": {}})
        elif method == "task.run":
            task = msg["params"]["task"]
            inp = task.get("input")
            if isinstance(inp, dict) and inp.get("hang"):
                log("hanging (on purpose): no more reading")
                time.sleep(1 << 20)
            t = threading.Thread(target=run, args=(msg["id"], task), daemon=True)
            t.start()
            running.append(t)
        elif method == "task.cancel":
            canceled.add(msg["params"]["id"])
        elif method == "shutdown":
            # Drain: no new tasks come now; finish the ones in hand, then go.
            # (The daemon sends the stop signal after stop_timeout anyway.)
            log("shutdown: finishing the tasks in hand")
            for t in running:
                t.join()
            break
    log("stdin closed; bye")


if __name__ == "__main__":
    main()
