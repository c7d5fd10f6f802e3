# What the differential suite reads of an Ansible run (ansible-core 2.14),
# written to $E2C_DIFF_OUT when the playbook ends, however it ends:
#   {"hosts": {name: {"failed": bool, "unreachable": bool, "task": "file:line",
#                     "msg": str, "vars": {name: value}}}}
# "task" is the last failure not ignored that failed the host (a failure a
# rescue handled does not). "vars" are the variables named in
# $E2C_DIFF_VARS (comma-separated) as later tasks would read them: what
# register and set_fact stored, run_once and delegation included, read from
# the variable manager itself rather than rebuilt from task results.
import json
import os

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'e2c_diff'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.play = None
        self.failures = {}

    def v2_playbook_on_play_start(self, play):
        self.play = play

    def _failure(self, result, unreachable=False):
        self.failures[result._host.get_name()] = {
            'task': result._task.get_path(),
            'msg': str(result._result.get('msg', '')),
            'unreachable': unreachable,
        }

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._failure(result)

    def v2_runner_on_unreachable(self, result):
        self._failure(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        names = [n for n in os.environ.get('E2C_DIFF_VARS', '').split(',') if n]
        out = {'hosts': {}}
        if self.play is not None:
            vm = self.play.get_variable_manager()
            for host in vm._inventory.get_hosts():
                name = host.get_name()
                s = stats.summarize(name)
                h = {'failed': s['failures'] > 0, 'unreachable': s['unreachable'] > 0, 'vars': {}}
                if h['failed'] or h['unreachable']:
                    h.update(self.failures.get(name, {}))
                known = dict(vm._fact_cache.get(name, {}))
                known.update(vm._nonpersistent_fact_cache.get(name, {}))
                for n in names:
                    if n in known:
                        h['vars'][n] = known[n]
                out['hosts'][name] = h
        with open(os.environ['E2C_DIFF_OUT'], 'w') as f:
            json.dump(out, f, cls=AnsibleJSONEncoder, sort_keys=True, indent=1)
