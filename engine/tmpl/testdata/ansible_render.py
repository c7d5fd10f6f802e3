"""Renders templates with Ansible's own Templar, as ansible-core configures
Jinja2 (trim_blocks, AnsibleUndefined, Ansible's filters and tests).

Reads {"vars": {...}, "cases": [{"src": "...", "mode": "file"|"task"}]} as
JSON on stdin and writes one result a case: {"out": "..."} or {"error": "..."}.
"file" renders as the template module does (escape_backslashes=False), "task"
as a task's field (escape_backslashes=True); both as strings.
"""
import json
import sys

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

req = json.load(sys.stdin)
templar = Templar(loader=DataLoader(), variables=req["vars"])
out = []
for case in req["cases"]:
    try:
        res = templar.do_template(case["src"], escape_backslashes=case.get("mode") == "task")
        out.append({"out": str(res)})
    except Exception as e:
        out.append({"error": type(e).__name__ + ": " + str(e).splitlines()[0] if str(e) else type(e).__name__})
json.dump(out, sys.stdout)
