package execute

import (
	"maps"
)

// setFact gives the host variables, as Ansible's set_fact: later tasks
// read them as they read registered values (hostRun.module keeps them).
func (c *call) setFact() (map[string]any, error) {
	facts := maps.Clone(map[string]any(c.a))
	delete(facts, "cacheable")
	return map[string]any{"ansible_facts": facts, "changed": false}, nil
}

// assert checks conditions, as when does, and fails at the first that
// does not hold.
func (c *call) assert() (map[string]any, error) {
	for _, cond := range c.a.list("that") {
		ok, err := c.scope.Holds([]string{cond})
		if err != nil {
			return failed(map[string]any{"assertion": cond}, "The conditional check '%s' failed. The error was: %v", cond, err)
		}
		if !ok {
			msg := "Assertion failed"
			if c.a.has("fail_msg") {
				msg = c.a.str("fail_msg")
			}
			return failed(map[string]any{"assertion": cond, "evaluated_to": false}, "%s", msg)
		}
	}
	msg := "All assertions passed"
	if c.a.has("success_msg") {
		msg = c.a.str("success_msg")
	}
	if !c.a.boolean("quiet", false) {
		c.e.logf(c.host, "%s", msg)
	}
	return map[string]any{"changed": false, "msg": msg}, nil
}

// fail fails the task with msg.
func (c *call) fail() (map[string]any, error) {
	msg := "Failed as requested from task"
	if c.a.has("msg") {
		msg = c.a.str("msg")
	}
	return failed(nil, "%s", msg)
}
