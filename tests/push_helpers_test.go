package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// startBuildkitdConfig is startBuildkitd with toml as its buildkitd.toml
// (registry settings: [registry."HOST"] http, ca, ...).
func startBuildkitdConfig(t *testing.T, dir, toml string, flags ...string) *bkDaemon {
	t.Helper()
	d := newBkDaemon(t, dir, []byte(toml))
	d.flags = flags
	d.start(t)
	return d
}

// runStoreImage unpacks name from the oci2 store at storeDir as a bundle
// and runs it with runc (as d.runImage does for the daemon's store).
func (d *bkDaemon) runStoreImage(t *testing.T, storeDir, name string) string {
	t.Helper()
	other := &bkDaemon{dir: d.dir, store: storeDir}
	return other.runImage(t, name)
}

// registryBlobs lists the blobs a distribution registry stores under dir
// (its filesystem storage: manifests are blobs there too), with sizes.
func registryBlobs(t *testing.T, dir string) map[digest.Digest]int64 {
	t.Helper()
	root := filepath.Join(dir, "storage", "docker", "registry", "v2", "blobs", "sha256")
	out := map[digest.Digest]int64{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if e.Name() != "data" || e.IsDir() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		out[digest.NewDigestFromEncoded(digest.SHA256, filepath.Base(filepath.Dir(p)))] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("listing registry blobs: %v", err)
	}
	return out
}

// pushSummary is the exporter's "pushed NAME@DIGEST: ..." progress line.
type pushSummary struct {
	Digest   string
	Uploaded int
	Present  int
	Mounted  int
}

var pushedRE = regexp.MustCompile(`pushed (\S+)@(sha256:[0-9a-f]{64}): (\d+) blobs uploaded \([^)]*\), (\d+) present, (\d+) mounted`)

// pushedLine finds the exporter's summary of the push to name in buildctl's
// plain progress output.
func pushedLine(t *testing.T, stderr, name string) pushSummary {
	t.Helper()
	for _, m := range pushedRE.FindAllStringSubmatch(stderr, -1) {
		if m[1] != name {
			continue
		}
		atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
		return pushSummary{Digest: m[2], Uploaded: atoi(m[3]), Present: atoi(m[4]), Mounted: atoi(m[5])}
	}
	t.Fatalf("no %q progress line for %s in:\n%s", "pushed", name, clip(stderr))
	return pushSummary{}
}

// appContext writes a build context on the busybox base: napp files of
// size bytes in app/ (f100, f101, ..., seeded), and app/msg; the image
// prints msg, then the md5sum of every file.
func appContext(t *testing.T, dir, msg string, napp, size int) {
	t.Helper()
	df := "FROM busybox\nCOPY app/ /app/\nCMD [\"/bin/sh\", \"-c\", \"cat /app/msg; cd /app && md5sum f*\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range napp {
		writeRandom(t, filepath.Join(dir, "app", "f"+strconv.Itoa(100+i)), size, uint64(i))
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "msg"), []byte(msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setDockerConfig points buildctl (the client: credentials travel through
// its session, the daemon never reads them) at a docker config directory
// for the rest of t.
func setDockerConfig(t *testing.T, dir string) {
	t.Setenv("DOCKER_CONFIG", dir)
}

// hasAll reports whether every word is in s.
func hasAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
