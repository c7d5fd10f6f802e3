package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// UpdateRecord runs f on the machine-wide record name, a JSON list that
// the scenarios of this user share, in dir ("": the user's cache folder,
// ~/.cache/e2c or under $XDG_CACHE_HOME), and saves the list f returns.
// The record is read and written under an exclusive lock, so that e2c
// processes take turns, and replaced atomically, so that a crash leaves
// the old list or the new one. damaged says what to do with a record that
// cannot be read.
func UpdateRecord[T any](dir, name, damaged string, f func([]T) ([]T, error)) error {
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no folder for the record %s: %w", name, err)
		}
		dir = filepath.Join(cache, "e2c")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	// A lock file of its own: the record is replaced by rename, which a
	// lock on the record itself would not survive.
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", path, err)
	}
	var list []T
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("%s is damaged (%v): %s", path, err, damaged)
		}
	}
	if list, err = f(list); err != nil {
		return err
	}
	changed, err := json.MarshalIndent(list, "", "  ")
	if err != nil || bytes.Equal(append(changed, '\n'), data) {
		return err
	}
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(changed, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
