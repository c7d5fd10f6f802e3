package experiment

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// TestDrive: which steps of a run run after a failure or an interrupt, and
// how each is recorded.
func TestDrive(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fail    string // the step that fails
		cut     bool   // an interrupt during wait
		want    string // the steps recorded, name:status
		wantErr string
	}{
		{name: "all succeed", want: "prepare:succeeded launch:succeeded wait:succeeded finalize:succeeded"},
		{name: "prepare fails: nothing launched, nothing to finalize", fail: "prepare",
			want: "prepare:failed", wantErr: "prepare: boom"},
		{name: "launch fails: no wait, finalize fetches what there is", fail: "launch",
			want: "prepare:succeeded launch:failed finalize:succeeded", wantErr: "launch [a]: boom"},
		{name: "interrupted during wait: finalize on a fresh context", cut: true,
			want: "prepare:succeeded launch:succeeded wait:interrupted finalize:succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &run{x: &Session{o: Options{FinalizeTimeout: time.Minute}},
				rec: &recorder{rec: results.NewRecord(t.TempDir()), out: io.Discard}}
			finalized := false
			do := func(name string) func(context.Context, *results.Step) error {
				return func(ctx context.Context, s *results.Step) error {
					switch {
					case name == tt.fail:
						return boom
					case name == "wait" && tt.cut:
						cancel()
						s.Status = results.Interrupted
					case name == "finalize":
						finalized = true
						if ctx.Err() != nil || r.interrupted != tt.cut {
							t.Errorf("finalize: context %v, interrupted %v", ctx.Err(), r.interrupted)
						}
					}
					return nil
				}
			}
			err := r.drive(ctx, []step{
				{name: "prepare", do: do("prepare")},
				{name: "launch", conf: "a", do: do("launch")},
				{name: "wait", conf: "a", do: do("wait")},
				{name: "finalize", conf: "a", closes: "launch", do: do("finalize")},
			})
			var got []string
			for _, s := range r.rec.rec.Steps {
				got = append(got, s.Name+":"+string(s.Status))
				if s.End == nil {
					t.Errorf("step %s has no end", s.Name)
				}
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("steps %v, want %s", got, tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if finalized != strings.Contains(tt.want, "finalize") {
				t.Errorf("finalize ran: %v", finalized)
			}
		})
	}
}
