package agent

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// spreadEnd is e2c's end of a spread stream.
type spreadEnd struct {
	t     *testing.T
	st    *yamux.Stream
	dec   *json.Decoder
	port  int
	first SpreadReport // the report with the port
}

func startSpread(t *testing.T, c *yamux.Session, req Request) *spreadEnd {
	t.Helper()
	req.Op, req.Addr = OpSpread, "127.0.0.1"
	st := request(t, c, req)
	e := &spreadEnd{t: t, st: st, dec: json.NewDecoder(st)}
	r := e.next()
	if r.Port == 0 {
		t.Fatalf("first report %+v, want a port", r)
	}
	e.port, e.first = r.Port, r
	return e
}

func (e *spreadEnd) next() SpreadReport {
	e.t.Helper()
	_ = e.st.SetReadDeadline(time.Now().Add(20 * time.Second))
	var r SpreadReport
	if err := e.dec.Decode(&r); err != nil {
		e.t.Fatalf("report: %v", err)
	}
	return r
}

// until reads reports until one satisfies ok and returns it.
func (e *spreadEnd) until(ok func(SpreadReport) bool) SpreadReport {
	e.t.Helper()
	for {
		if r := e.next(); ok(r) {
			return r
		}
	}
}

func (e *spreadEnd) order(from string) {
	e.t.Helper()
	if err := json.NewEncoder(e.st).Encode(SpreadOrder{From: from}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *spreadEnd) addr() string { return "127.0.0.1:" + strconv.Itoa(e.port) }

// feedFrom feeds data to the spread token through a feed stream, from
// the offset the agent asks for, and returns that offset.
func feedFrom(t *testing.T, c *yamux.Session, token string, data []byte) int64 {
	t.Helper()
	st := request(t, c, Request{Op: OpFeed, Token: token})
	defer st.Close()
	r := bufio.NewReader(st)
	line, err := r.ReadBytes('\n')
	var rep SpreadReport
	if err == nil {
		err = json.Unmarshal(line, &rep)
	}
	if err != nil || rep.Error != "" {
		t.Fatalf("feed answer %q: %v", line, err)
	}
	if _, err := st.Write(data[rep.Have:]); err != nil {
		t.Fatal(err)
	}
	return rep.Have
}

func payload(n int) ([]byte, string) {
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the file sent", path, len(got))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v, want 0644", path, fi.Mode().Perm())
	}
}

// leftovers lists what is in dir beside the files named.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	var left []string
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = nil
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.Contains(strings.Join(keep, "/"), e.Name()) {
				left = append(left, e.Name())
			}
		}
		if len(left) == 0 || time.Now().After(end) {
			return left
		}
	}
}

// TestSpreadRelay: e2c feeds one agent, a second pulls from the first
// while it still receives; both get the file, checked, at Path; when the
// spreads end nothing else is left and the ports are closed.
func TestSpreadRelay(t *testing.T) {
	data, sum := payload(12<<20 + 12345)
	dir := t.TempDir()
	ca, _, _ := start(t)
	cb, _, _ := start(t)
	req := Request{Size: int64(len(data)), Sum: sum, Token: "t0k3n"}
	req.Path = filepath.Join(dir, "a", "f.bin")
	a := startSpread(t, ca, req)
	req.Path = filepath.Join(dir, "b", "sub", "f.bin")
	b := startSpread(t, cb, req)
	b.order(a.addr()) // before a has anything: b waits for it
	if off := feedFrom(t, ca, "t0k3n", data); off != 0 {
		t.Fatalf("feed from %d, want 0", off)
	}
	for _, e := range []*spreadEnd{a, b} {
		if r := e.until(func(r SpreadReport) bool { return r.Done || r.Error != "" || r.Lost != "" }); !r.Done {
			t.Fatalf("report %+v, want done", r)
		}
	}
	checkFile(t, filepath.Join(dir, "a", "f.bin"), data)
	checkFile(t, filepath.Join(dir, "b", "sub", "f.bin"), data)
	a.st.Close()
	b.st.Close()
	for _, sub := range []string{"a", filepath.Join("b", "sub")} {
		if left := leftovers(t, filepath.Join(dir, sub), "f.bin"); len(left) > 0 {
			t.Errorf("%s: left %v", sub, left)
		}
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", a.addr())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(end) {
			t.Fatal("the spread's port is still open after the spread")
		}
	}
}

// TestSpreadSourceFails: a source that fails, stalls or sends the wrong
// bytes. A lost source is reported with what the host has, and a new
// feed resumes from there; wrong bytes are a hash error and no file.
func TestSpreadSourceFails(t *testing.T) {
	old := SpreadStall
	SpreadStall = time.Second
	t.Cleanup(func() { SpreadStall = old })
	data, sum := payload(3<<20 + 7)
	half := len(data) / 2
	for _, tt := range []struct {
		name  string
		serve func(c net.Conn) // the bad peer, past the request line
		lost  string           // the loss reported, "": an error instead
		err   string
	}{
		{"dies mid-way", func(c net.Conn) { c.Write(data[:half]) }, "ended early", ""},
		{"stalls", func(c net.Conn) { c.Write(data[:half]); time.Sleep(3 * time.Second) }, "no byte for 1s", ""},
		{"wrong bytes", func(c net.Conn) {
			bad := bytes.Clone(data)
			bad[len(bad)-1] ^= 1
			c.Write(bad)
		}, "", "SHA-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				bufio.NewReader(c).ReadBytes('\n')
				tt.serve(c)
			}()
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			c, _, _ := start(t)
			e := startSpread(t, c, Request{Path: path, Size: int64(len(data)), Sum: sum, Token: "tok"})
			e.order(ln.Addr().String())
			r := e.until(func(r SpreadReport) bool { return r.Done || r.Error != "" || r.Lost != "" })
			if tt.lost == "" {
				if !strings.Contains(r.Error, tt.err) {
					t.Fatalf("report %+v, want an error with %q", r, tt.err)
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("%s exists after a hash error (%v)", path, err)
				}
				e.st.Close()
				if left := leftovers(t, dir); len(left) > 0 {
					t.Errorf("left %v", left)
				}
				return
			}
			if !strings.Contains(r.Lost, tt.lost) || r.Have != int64(half) {
				t.Fatalf("report %+v, want lost %q with have %d", r, tt.lost, half)
			}
			if off := feedFrom(t, c, "tok", data); off != int64(half) {
				t.Errorf("the feed started at %d, want %d: a re-feed resumes", off, half)
			}
			if r := e.until(func(r SpreadReport) bool { return r.Done || r.Error != "" }); !r.Done {
				t.Fatalf("report %+v, want done", r)
			}
			checkFile(t, path, data)
		})
	}
}

// TestSpreadHasIt: a host that has the file at Path already, of mode
// 0644, says done in its first report and serves it unchanged; a file
// named by the sum is taken on its size, unread (e2c's blobs); any
// other file there is received afresh and replaced.
func TestSpreadHasIt(t *testing.T) {
	data, sum := payload(2<<20 + 5)
	other := bytes.Clone(data)
	other[len(other)/2] ^= 1
	for _, tt := range []struct {
		name string
		blob bool // the file is named by the sum
		have []byte
		mode os.FileMode
		done bool // at once
	}{
		{name: "the file", have: data, mode: 0o644, done: true},
		{name: "the file named by its sum", blob: true, have: data, mode: 0o644, done: true},
		{name: "other bytes named by the sum", blob: true, have: other, mode: 0o644, done: true},
		{name: "other bytes", have: other, mode: 0o644},
		{name: "shorter", have: data[:len(data)-1], mode: 0o644},
		{name: "mode 0600", have: data, mode: 0o600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			if tt.blob {
				path = filepath.Join(dir, sum)
			}
			if err := os.WriteFile(path, tt.have, tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode)
			before, _ := os.Stat(path)
			c, _, _ := start(t)
			e := startSpread(t, c, Request{Path: path, Size: int64(len(data)), Sum: sum, Token: "tok"})
			if e.first.Done != tt.done {
				t.Fatalf("first report %+v, want done: %v", e.first, tt.done)
			}
			if !tt.done {
				feedFrom(t, c, "tok", data)
				if r := e.until(func(r SpreadReport) bool { return r.Done || r.Error != "" }); !r.Done {
					t.Fatalf("report %+v, want done", r)
				}
				checkFile(t, path, data)
				return
			}
			if e.first.Have != int64(len(data)) {
				t.Errorf("first report %+v, want have %d", e.first, len(data))
			}
			if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("the file at Path was replaced or written (%v)", err)
			}
			// It serves what it has, and takes no feed.
			pc, err := net.Dial("tcp", e.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			json.NewEncoder(pc).Encode(PeerRequest{Token: "tok", Offset: 10})
			pc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got, err := io.ReadAll(pc); err != nil || !bytes.Equal(got, tt.have[10:]) {
				t.Errorf("served %d bytes (%v), want the %d of the file from offset 10", len(got), err, len(tt.have)-10)
			}
			var rep SpreadReport
			if err := json.NewDecoder(request(t, c, Request{Op: OpFeed, Token: "tok"})).Decode(&rep); err != nil || !strings.Contains(rep.Error, "no more bytes") {
				t.Errorf("feed answer %+v (%v), want no more bytes taken", rep, err)
			}
			e.st.Close()
			if left := leftovers(t, dir, filepath.Base(path)); len(left) > 0 {
				t.Errorf("left %v", left)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the file is gone after the spread: %v", err)
			}
		})
	}
}

// TestSpreadToken: a peer without the token gets nothing; with it, the
// file.
func TestSpreadToken(t *testing.T) {
	data, sum := payload(1 << 20)
	c, _, _ := start(t)
	e := startSpread(t, c, Request{Path: filepath.Join(t.TempDir(), "f.bin"), Size: int64(len(data)), Sum: sum, Token: "right-token"})
	feedFrom(t, c, "right-token", data)
	e.until(func(r SpreadReport) bool { return r.Done })
	for _, tt := range []struct {
		token string
		want  []byte
	}{
		{"wrong-token", nil},
		{"right-toke", nil},
		{"", nil},
		{"right-token", data[100:]},
	} {
		pc, err := net.Dial("tcp", e.addr())
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(pc).Encode(PeerRequest{Token: tt.token, Offset: 100})
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(pc)
		pc.Close()
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("token %q: %d bytes (%v), want %d", tt.token, len(got), err, len(tt.want))
		}
	}
}

// TestSpreadBadRequest: a spread without a proper sum, path or token is
// refused with the reason.
func TestSpreadBadRequest(t *testing.T) {
	c, _, _ := start(t)
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Path: "f", Sum: "abc", Token: "t"}, "not a SHA-256"},
		{Request{Sum: strings.Repeat("0", 64), Token: "t"}, "no path"},
		{Request{Path: "f", Sum: strings.Repeat("0", 64)}, "no token"},
	} {
		tt.req.Op = OpSpread
		var r SpreadReport
		if err := json.NewDecoder(request(t, c, tt.req)).Decode(&r); err != nil || !strings.Contains(r.Error, tt.want) {
			t.Errorf("%+v: report %+v (%v), want an error with %q", tt.req, r, err, tt.want)
		}
	}
}
