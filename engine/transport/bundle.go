package transport

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// bundled are the local files written into bundles, by version
// (memoKey): a Put looks for them in the host's cache though they are
// small.
var bundled = struct {
	sync.Mutex
	m map[memoKey]bundleMember
}{m: map[memoKey]bundleMember{}}

// bundleMember is a file of bundles.
type bundleMember struct {
	sum     string   // the file's SHA-256, its name in a bundle
	bundles []string // where a host keeps the bundles holding it, as Blob says
}

// bundlesOf tells the bundles holding f, if any.
func bundlesOf(f localFile) (bundleMember, bool) {
	bundled.Lock()
	defer bundled.Unlock()
	m, ok := bundled.m[keyOf(f)]
	return m, ok
}

// Bundle writes into dir a tar of the local files, each once under its
// SHA-256 and in the order of those, for a spread to carry many small
// files to the hosts' BlobDir as one, and returns the tar's path. From
// then on Put takes these files, as they are now, from the bundle on a
// host that has it (agent.OpCache). The tar holds nothing but the files'
// contents (no names, times or owners), so that the same contents make
// the same bundle, which a host keeps from one run to the next.
func Bundle(dir string, files []string) (string, error) {
	type member struct {
		f   localFile
		sum string
	}
	var members []member
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			return "", err
		}
		f := localFile{path: name, info: fi}
		sum, err := memoSum(f)
		if err != nil {
			return "", err
		}
		members = append(members, member{f, sum})
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.sum, b.sum) })

	out, err := os.CreateTemp(dir, "bundle-*.tar")
	if err != nil {
		return "", err
	}
	defer out.Close()
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(out, h))
	tw := tar.NewWriter(bw)
	for i, m := range members {
		if i > 0 && m.sum == members[i-1].sum {
			continue
		}
		if err := addMember(tw, m.f, m.sum); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	fi, err := os.Stat(out.Name())
	if err != nil {
		return "", err
	}
	sums.Store(keyOf(localFile{path: out.Name(), info: fi}), sum) // Blob needs it
	blob := path.Join(BlobDir, sum)
	bundled.Lock()
	defer bundled.Unlock()
	for _, m := range members {
		b := bundled.m[keyOf(m.f)]
		if !slices.Contains(b.bundles, blob) {
			// A new slice: bundlesOf's callers hold the old one.
			b.bundles = append(slices.Clip(b.bundles), blob)
		}
		b.sum = m.sum
		bundled.m[keyOf(m.f)] = b
	}
	return out.Name(), nil
}

// addMember writes f into tw as sum; tw fails if f is now shorter than
// it was hashed at.
func addMember(tw *tar.Writer, f localFile, sum string) error {
	err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: sum, Size: f.info.Size(), Mode: 0o600, ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR})
	if err != nil {
		return err
	}
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(tw, io.LimitReader(r, f.info.Size())); err != nil {
		return fmt.Errorf("bundle %s: %w", f.path, err)
	}
	return nil
}
