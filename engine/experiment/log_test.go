package experiment

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLogger: the run's lines as text (as they always were) and as JSON
// objects, whose host is a field of its own.
func TestLogger(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		var b strings.Builder
		log := newLogger(&b, asJSON)
		log.Info("TASK shell: true", "host", "edge-1")
		lines := &logLines{log: log}
		lines.Write([]byte("reserve: 2 instances\nrun 1 of 1"))
		lines.Write([]byte(": /tmp/run\n"))
		log.With("host", "cloud-1").Info("ok")

		got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		want := [][2]string{{"edge-1", "TASK shell: true"}, {"", "reserve: 2 instances"}, {"", "run 1 of 1: /tmp/run"}, {"cloud-1", "ok"}}
		if len(got) != len(want) {
			t.Fatalf("json %v: lines %q", asJSON, got)
		}
		for i, w := range want {
			if !asJSON {
				line := w[1]
				if w[0] != "" {
					line = w[0] + " | " + line
				}
				if got[i] != line {
					t.Errorf("text line %d: %q, want %q", i, got[i], line)
				}
				continue
			}
			var e struct{ Time, Level, Msg, Host string }
			if err := json.Unmarshal([]byte(got[i]), &e); err != nil || e.Msg != w[1] || e.Host != w[0] || e.Level != "INFO" || e.Time == "" {
				t.Errorf("json line %d: %q (%v), want msg %q host %q", i, got[i], err, w[1], w[0])
			}
		}
	}
}
