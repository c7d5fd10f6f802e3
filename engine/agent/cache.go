package agent

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// OpCache copies the files a copy puts from where spreads left them on the
// host (the BlobDir of engine/transport), so that their bytes do not cross
// e2c's link again: each from its Blob or, when the host has no such file,
// from the member of that name of one of Bundles (tar files spread there,
// that carry a folder's small files in one piece). Its answer is one line
// of JSON, a Cached. It runs no process: a folder of small files costs the
// host no more than a few writes.
const OpCache = "cache"

// CacheFile is one file of an OpCache.
type CacheFile struct {
	Blob  string      `json:"blob"` // relative to the login directory; its base name is the file's SHA-256
	Dst   string      `json:"dst"`
	Perm  fs.FileMode `json:"perm"`
	Mtime int64       `json:"mtime"` // Unix nanoseconds
}

// Cached answers an OpCache.
type Cached struct {
	Copied []bool `json:"copied"`          // by file of the request: false when the host has it nowhere
	Error  string `json:"error,omitempty"` // why the copying stopped; Copied tells what was done before
}

// cache copies req.Files, as OpCache says.
func cache(req Request) Cached {
	res := Cached{Copied: make([]bool, len(req.Files))}
	missing := map[string][]int{} // by member name, the files the blobs lack
	for i, f := range req.Files {
		err := copyFile(f.Blob, f)
		if errors.Is(err, fs.ErrNotExist) {
			name := path.Base(f.Blob)
			missing[name] = append(missing[name], i)
			continue
		}
		if err != nil {
			res.Error = err.Error()
			return res
		}
		res.Copied[i] = true
	}
	for _, b := range req.Bundles {
		if len(missing) == 0 {
			break
		}
		if err := fromBundle(b, missing, req.Files, res.Copied); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	return res
}

// fromBundle copies, from the members of the tar file bundle, the files
// missing names; it takes the members it finds out of missing. A bundle
// the host lacks is no error.
func fromBundle(bundle string, missing map[string][]int, files []CacheFile, copied []bool) error {
	f, err := os.Open(bundle)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for len(missing) > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", bundle, err)
		}
		at, ok := missing[h.Name]
		if !ok || h.Typeflag != tar.TypeReg {
			continue
		}
		delete(missing, h.Name)
		if err := install(tr, files[at[0]]); err != nil {
			return err
		}
		copied[at[0]] = true
		for _, i := range at[1:] { // the same content again: from the first copy
			if err := copyFile(files[at[0]].Dst, files[i]); err != nil {
				return err
			}
			copied[i] = true
		}
	}
	return nil
}

// copyFile installs the file src as f says.
func copyFile(src string, f CacheFile) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	return install(r, f)
}

// install writes r to f.Dst with f's permissions and modification time,
// through a temporary file beside it renamed over it, as every Put writes.
func install(r io.Reader, f CacheFile) error {
	t, err := os.CreateTemp(filepath.Dir(f.Dst), "."+filepath.Base(f.Dst)+".e2c-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(t, r)
	if err == nil {
		err = t.Chmod(f.Perm.Perm())
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		mtime := time.Unix(0, f.Mtime)
		err = os.Chtimes(t.Name(), mtime, mtime)
	}
	if err == nil {
		err = os.Rename(t.Name(), f.Dst)
	}
	if err != nil {
		os.Remove(t.Name())
	}
	return err
}
