package convert

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dstLayout writes an OCI image layout: directly into an oci: directory, or
// into a temporary directory next to an oci-archive: file that is then
// archived into place.
type dstLayout struct {
	loc Location
	dir string
}

func createLayout(loc Location) (*dstLayout, error) {
	d := &dstLayout{loc: loc}
	switch loc.Transport {
	case TransportOCI:
		d.dir = loc.Path
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return nil, err
		}
	case TransportArchive:
		dir, err := os.MkdirTemp(filepath.Dir(loc.Path), ".oci2-export-")
		if err != nil {
			return nil, err
		}
		d.dir = dir
	default:
		return nil, fmt.Errorf("unknown transport %q", loc.Transport)
	}
	if err := d.init(); err != nil {
		d.abort()
		return nil, err
	}
	return d, nil
}

func (d *dstLayout) init() error {
	p := filepath.Join(d.dir, ocispec.ImageLayoutFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		var v ocispec.ImageLayout
		if err := json.Unmarshal(b, &v); err != nil || v.Version != ocispec.ImageLayoutVersion {
			return fmt.Errorf("%s: existing %s is not image layout %s", d.dir, ocispec.ImageLayoutFile, ocispec.ImageLayoutVersion)
		}
	case errors.Is(err, os.ErrNotExist):
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := writeFileAtomic(p, b); err != nil {
			return err
		}
	default:
		return err
	}
	return os.MkdirAll(filepath.Join(d.dir, ocispec.ImageBlobsDir, digest.SHA256.String()), 0o755)
}

func (d *dstLayout) blobPath(dg digest.Digest) string {
	return filepath.Join(d.dir, ocispec.ImageBlobsDir, dg.Algorithm().String(), dg.Encoded())
}

// putJSON stores v as a blob and returns its descriptor.
func (d *dstLayout) putJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	p := d.blobPath(desc.Digest)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == desc.Size {
		return desc, nil // already there
	}
	return desc, writeFileAtomic(p, b)
}

// tempBlob creates a file in the blobs directory for streaming a blob.
func (d *dstLayout) tempBlob() (*os.File, error) {
	return os.CreateTemp(filepath.Join(d.dir, ocispec.ImageBlobsDir), ".tmp-")
}

// commitBlob moves a finished temp blob into place.
func (d *dstLayout) commitBlob(f *os.File, dg digest.Digest) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), d.blobPath(dg))
}

// finish adds desc to index.json (replacing an image of the same ref name,
// as skopeo does) and, for an archive, writes the archive.
func (d *dstLayout) finish(desc ocispec.Descriptor) error {
	if d.loc.Ref != "" {
		desc.Annotations = map[string]string{ocispec.AnnotationRefName: d.loc.Ref}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	p := filepath.Join(d.dir, ocispec.ImageIndexFile)
	if b, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("parsing existing %s: %w", p, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		name := m.Annotations[ocispec.AnnotationRefName]
		if name == d.loc.Ref && (name != "" || m.Digest == desc.Digest) {
			continue
		}
		kept = append(kept, m)
	}
	idx.Manifests = append(kept, desc)
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p, b); err != nil {
		return err
	}
	if d.loc.Transport == TransportArchive {
		if err := archiveDir(d.dir, d.loc.Path); err != nil {
			return fmt.Errorf("writing archive %s: %w", d.loc.Path, err)
		}
		return os.RemoveAll(d.dir)
	}
	return nil
}

// abort removes what an unfinished export wrote that nothing references: the
// whole temporary directory of an archive, temp blobs of a directory.
func (d *dstLayout) abort() {
	if d.loc.Transport == TransportArchive {
		os.RemoveAll(d.dir)
	}
}

// writeFileAtomic writes b to p through a synced temp file and rename.
func writeFileAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// archiveDir writes the layout in dir as an uncompressed tar at dst
// (atomically): oci-layout, index.json, then every blob in name order, with
// fixed modes and times so the archive is reproducible.
func archiveDir(dir, dst string) error {
	var names []string
	names = append(names, ocispec.ImageLayoutFile, ocispec.ImageIndexFile, ocispec.ImageBlobsDir+"/")
	algs, err := os.ReadDir(filepath.Join(dir, ocispec.ImageBlobsDir))
	if err != nil {
		return err
	}
	for _, a := range algs { // ReadDir sorts by name
		if !a.IsDir() {
			continue
		}
		names = append(names, ocispec.ImageBlobsDir+"/"+a.Name()+"/")
		blobs, err := os.ReadDir(filepath.Join(dir, ocispec.ImageBlobsDir, a.Name()))
		if err != nil {
			return err
		}
		for _, b := range blobs {
			if b.Type().IsRegular() {
				names = append(names, ocispec.ImageBlobsDir+"/"+a.Name()+"/"+b.Name())
			}
		}
	}
	sort.Strings(names[3:]) // directories sort before their blobs
	f, err := os.CreateTemp(filepath.Dir(dst), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, name := range names {
		if err := archiveEntry(tw, dir, name); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

func archiveEntry(tw *tar.Writer, dir, name string) error {
	hdr := &tar.Header{Name: name, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if name[len(name)-1] == '/' {
		hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		return tw.WriteHeader(hdr)
	}
	f, size, err := openRegular(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
