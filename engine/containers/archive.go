package containers

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// ArchiveImage is an image in a `docker save` archive.
type ArchiveImage struct {
	ID   string   // sha256:... of its config: the ID a daemon gives it once loaded
	Tags []string // name:tag
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReadArchive lists the images of a `docker save` archive from its
// manifest.json, without a daemon, so that e2c knows which hosts lack them
// before sending anything. It reads both layouts docker save writes: the
// classic one (config at HEX.json) and the OCI one of Docker 25 and later
// (config at blobs/sha256/HEX).
func ReadArchive(r io.Reader) ([]ArchiveImage, error) {
	tr := tar.NewReader(r)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("not a docker save archive: no manifest.json")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if path.Clean(hd.Name) != "manifest.json" {
			continue
		}
		var m []struct {
			Config   string
			RepoTags []string
		}
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			return nil, fmt.Errorf("manifest.json: %w", err)
		}
		var out []ArchiveImage
		for _, e := range m {
			hex := strings.TrimSuffix(path.Base(e.Config), ".json")
			if !hex64.MatchString(hex) {
				return nil, fmt.Errorf("manifest.json: config %q is not named by its SHA-256", e.Config)
			}
			out = append(out, ArchiveImage{ID: "sha256:" + hex, Tags: e.RepoTags})
		}
		if len(out) == 0 {
			return nil, errors.New("manifest.json lists no image")
		}
		return out, nil
	}
}
