package agent

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// recorder keeps each Write apart.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func header(typ byte, length uint32) []byte {
	h := make([]byte, frameHeader)
	h[1] = typ
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestCoalesceFrames: a data frame's header goes out with its body, from
// the writer's buffer or the pool's; other frames (window updates, pings,
// a data frame with flags only, one larger than an SSH packet) at once.
func TestCoalesceFrames(t *testing.T) {
	body := []byte("hello")
	for _, tt := range []struct {
		name   string
		writes [][]byte
		want   [][]byte
	}{
		{"data frame", [][]byte{header(frameData, 5), body}, [][]byte{append(header(frameData, 5), body...)}},
		{"data frame without a body (SYN, FIN)", [][]byte{header(frameData, 0)}, [][]byte{header(frameData, 0)}},
		{"window update", [][]byte{header(1, 262144)}, [][]byte{header(1, 262144)}},
		{"file's data frame", [][]byte{header(frameData, 16<<10), bytes.Repeat([]byte("f"), 16<<10)},
			[][]byte{append(header(frameData, 16<<10), bytes.Repeat([]byte("f"), 16<<10)...)}},
		{"largest data frame held", [][]byte{header(frameData, largeFrame), make([]byte, largeFrame)},
			[][]byte{append(header(frameData, largeFrame), make([]byte, largeFrame)...)}},
		{"larger data frame", [][]byte{header(frameData, largeFrame+1), make([]byte, largeFrame+1)},
			[][]byte{header(frameData, largeFrame+1), make([]byte, largeFrame+1)}},
		{"small then file's", [][]byte{header(frameData, 5), body, header(frameData, 5000), make([]byte, 5000)},
			[][]byte{append(header(frameData, 5), body...), append(header(frameData, 5000), make([]byte, 5000)...)}},
		{"ping then data", [][]byte{header(2, 7), header(frameData, 5), body},
			[][]byte{header(2, 7), append(header(frameData, 5), body...)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			w := CoalesceFrames(&r)
			for _, p := range tt.writes {
				if n, err := w.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if len(r.writes) != len(tt.want) {
				t.Fatalf("%d writes, want %d: %q", len(r.writes), len(tt.want), r.writes)
			}
			for i := range tt.want {
				if !bytes.Equal(r.writes[i], tt.want[i]) {
					t.Errorf("write %d: %q, want %q", i, r.writes[i], tt.want[i])
				}
			}
		})
	}
}
