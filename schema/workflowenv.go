package schema

import (
	"gopkg.in/yaml.v3"
)

// WorkflowEnv is workflow_env.yaml: named application configurations, each
// a flat map of values that tasks read as env_<key> under --app-conf.
type WorkflowEnv map[string]AppConf

// AppConf is one named configuration.
type AppConf struct {
	Node
	Values map[string]any
}

// DecodeWorkflowEnv reads workflow_env.yaml.
func DecodeWorkflowEnv(file string, data []byte) (WorkflowEnv, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	env := WorkflowEnv{}
	root := d.parse(data)
	if root == nil {
		return env, errs.Err()
	}
	fs, _ := d.fields(root, "workflow_env", nil)
	for _, f := range fs {
		if !nameRE.MatchString(f.key) {
			d.errorf(f.k, "workflow_env: configuration name %q may only contain letters, digits, '_' and '-' (it names a result folder)", f.key)
		}
		vs, node := d.fields(f.v, "workflow_env."+f.key, nil)
		conf := AppConf{Node: node, Values: map[string]any{}}
		for _, v := range vs {
			what := "workflow_env." + f.key + "." + v.key
			if !identRE.MatchString(v.key) {
				d.errorf(v.k, "%s: %q is not usable as env_%s in templates (letters, digits and '_' only)", what, v.key, v.key)
			}
			if v.v.Kind != yaml.ScalarNode {
				d.errorf(v.v, "%s: found %s, expected a single value (string, number or boolean)", what, describe(v.v))
				continue
			}
			conf.Values[v.key] = d.value(v.v, what)
		}
		env[f.key] = conf
	}
	return env, errs.Err()
}
