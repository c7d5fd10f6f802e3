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

// bundled are the local files written into a bundle, by version
// (memoKey): a Put looks for them in the host's cache though they are
// small.
var bundled sync.Map

// bundleMember is a file of a bundle.
type bundleMember struct {
	sum    string // the file's SHA-256, its name in the bundle
	bundle string // where a host keeps the bundle, as Blob says
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
	for _, m := range members {
		bundled.Store(keyOf(m.f), bundleMember{m.sum, blob})
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
