package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
)

// folders makes a scenario and an artifacts folder holding files, folders
// and links that point inside and out.
func folders(t *testing.T) (scenario, artifacts, run string) {
	t.Helper()
	dir := t.TempDir()
	scenario, artifacts, run = filepath.Join(dir, "scenario"), filepath.Join(dir, "artifacts"), filepath.Join(dir, "run")
	outside := filepath.Join(dir, "secret.txt")
	for path, text := range map[string]string{
		filepath.Join(artifacts, "tree", "a.txt"):       "a",
		filepath.Join(artifacts, "leaky", "a.txt"):      "a",
		filepath.Join(artifacts, "app.j2"):              "port {{ _self.port }}\n",
		filepath.Join(artifacts, "include.j2"):          "a\n{% include 'x' %}\n",
		filepath.Join(artifacts, "typo.j2"):             "one\nurl {{ _self.ulr }}\n",
		filepath.Join(artifacts, "registered.j2"):       "{{ out.stdout }}\n",
		filepath.Join(artifacts, "via-vars.j2"):         "{{ result }}\n",
		filepath.Join(scenario, "templates", "conf.j2"): "{{ inventory_hostname }}\n",
		outside: "secret",
	} {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(artifacts, "out"):              outside,
		filepath.Join(artifacts, "leaky", "sub"):     outside,
		filepath.Join(artifacts, "tree", "inside"):   filepath.Join(artifacts, "app.j2"),
		filepath.Join(artifacts, "tree", "relative"): "a.txt",
		filepath.Join(artifacts, "tree", "dangling"): filepath.Join(artifacts, "nothing"),
		filepath.Join(artifacts, "up"):               "..",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return scenario, artifacts, run
}

// TestPathsAtValidate checks that the files copy and template read, and
// where fetch writes, are checked on stand-in hosts before anything runs.
func TestPathsAtValidate(t *testing.T) {
	scenario, artifacts, run := folders(t)
	tests := []struct {
		name, tasks string
		want        []string // nil: valid
	}{
		{"artifacts", `
  vars: {result: "{{ out.stdout }}"}
  prepare:
  - copy: {src: tree/, dest: /opt/}
  - copy: {src: not-made-yet.jar, dest: /opt/}
  - template: {src: app.j2, dest: /etc/app}
  - template: {src: "{{ scenario_dir }}/templates/conf.j2", dest: /etc/conf}
  - {shell: ls, register: out}
  - template: {src: registered.j2, dest: /tmp/r}
  - template: {src: via-vars.j2, dest: /tmp/r}
  - fetch: {src: /x, dest: "{{ working_dir }}/in-artifacts/"}
  finalize:
  - fetch: {src: /x, dest: "{{ working_dir }}/results/"}
  - fetch: {src: /x, dest: "{{ working_dir }}/r.txt", flat: yes}
`, nil},
		{"absolute", "  prepare: [{copy: {src: /etc/passwd, dest: /tmp/}}]\n",
			[]string{`workflow.yaml:2:26: copy: src "/etc/passwd" is outside ARTIFACTS_DIR (` + artifacts + `): tasks send only the experiment's own files, which the run's artifacts.sha256 records (on host cloud-kafka-1-1)`}},
		{"dot dot", "  prepare: [{copy: {src: ../../../etc/passwd, dest: /tmp/}}]\n", []string{`copy: src "../../../etc/passwd" is outside ARTIFACTS_DIR`}},
		{"dot dot through a variable", "  prepare: [{copy: {src: \"{{ working_dir }}/../secret.txt\", dest: /tmp/}}]\n",
			[]string{`copy: src "` + artifacts + `/../secret.txt" is outside ARTIFACTS_DIR`}},
		{"scenario for copy", "  prepare: [{copy: {src: \"{{ scenario_dir }}/workflow.yaml\", dest: /tmp/}}]\n", []string{`is outside ARTIFACTS_DIR`}},
		{"template outside", "  prepare: [{template: {src: /etc/hostname, dest: /tmp/h}}]\n",
			[]string{`template: src "/etc/hostname" is outside ARTIFACTS_DIR (` + artifacts + `) and SCENARIO_DIR (` + scenario + `)`}},
		{"link out", "  prepare: [{copy: {src: out, dest: /tmp/}}]\n",
			[]string{`copy: src "out" is a link to ` + filepath.Join(filepath.Dir(artifacts), "secret.txt") + `, outside ARTIFACTS_DIR`}},
		{"link up", "  prepare: [{copy: {src: up/, dest: /tmp/}}]\n", []string{`copy: src "up/" is a link to ` + filepath.Dir(artifacts) + `, outside`}},
		{"link inside a folder", "  prepare: [{copy: {src: \"{{ artifacts_dir }}\", dest: /tmp/}}]\n",
			[]string{`is a link to ` + filepath.Join(filepath.Dir(artifacts), "secret.txt") + `, outside ARTIFACTS_DIR`}},
		{"template include", "  launch: [{template: {src: include.j2, dest: /tmp/x}}]\n",
			[]string{artifacts + `/include.j2:2:4: template: tag "include" is not allowed: templates cannot read files (the template of the task at ` + scenario + `/workflow.yaml:2:29)`}},
		{"template variable", "  launch: [{template: {src: typo.j2, dest: /tmp/x}}]\n",
			[]string{`workflow.yaml:2:29: template ` + artifacts + `/typo.j2: undefined variable "_self.ulr" (did you mean "_self.url"?) (on host cloud-kafka-1-1)`}},
		{"fetch escapes", "  finalize: [{fetch: {src: /x, dest: \"{{ working_dir }}/../../x\"}}]\n",
			[]string{`fetch: dest "` + run + `/../../x" is outside the run folder (` + run + `): fetched files land in the run folder (write dest under {{ working_dir }})`}},
		{"fetch absolute", "  finalize: [{fetch: {src: /x, dest: /tmp/x, flat: yes}}]\n", []string{`fetch: dest "/tmp/x" is outside the run folder`}},
		{"fetch relative in finalize", "  finalize: [{fetch: {src: /x, dest: r/}}]\n", []string{`fetch: dest "r/" is outside the run folder`}},
		{"fetch up in launch", "  launch: [{fetch: {src: /x, dest: ../x}}]\n",
			[]string{`fetch: dest "../x" is outside the run folder (` + run + `) and ARTIFACTS_DIR (` + artifacts + `)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{schema.LayersServicesFile: env + "layers: [{name: cloud, services: [{name: Kafka}]}]\n",
				schema.WorkflowFile: "- hosts: cloud.kafka.*.leader\n" + tt.tasks}
			for name, text := range files {
				if err := os.WriteFile(filepath.Join(scenario, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sc, err := schema.Load(scenario)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(sc, servicedef.New(nil), Synthetic(Expand(sc.LayersServices)),
				Options{ScenarioDir: scenario, ArtifactsDir: artifacts, RunDir: run, RepeatCount: 1})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}
