package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The identity-mapping test runs buildkitd-oci2 with user-namespace
// remapping ([worker.oci] userRemapUnsupported): the OCI worker stores every
// snapshot with host IDs (container ID + 200000) and runs build steps in a
// user namespace. The oci2 exporter must map the host IDs it walks back to
// container IDs (buildkit/exporter/tree.go, mapIDs), as BuildKit's own exporters do.
//
// What upstream buildkitd does in this mode, as found here (v0.34.2, runc
// 1.x, kernel 6.18): files the build makes (COPY, RUN, the build context)
// get host IDs; image layers do not: containerd's applier writes their tar
// owners as they are, and the root of every snapshot stays host 0:0 (the
// applier skips a layer's "./", a new snapshot's upper takes its parent's
// owner). So a RUN step runs only if the base already has /proc, /sys and
// /dev (runc, as the remapped root, cannot mkdir them in a root it does not
// own), can write only where the base lets others write, and needs its own
// network namespace (RUN --network=none: with the default host network,
// mounting sysfs fails with "operation not permitted"). The "run" case
// therefore builds on a base prepared as a remapping snapshotter would
// store it; "unmapped-base" covers the plain busybox base.

const (
	remapUser  = "oci2remap"
	remapStart = 200000 // first host ID of the subordinate ranges
	remapSize  = 65536
)

func TestBuildKitIdentityMapping(t *testing.T) {
	requireRoot(t)
	requireTools(t, "runc", "buildctl", "unshare", "mount", "tar")
	dir := workDir(t)
	b := makeBases(t, dir)
	if _, ok := b.digests["busybox"]; !ok {
		unavailableBase(t, "busybox")
	}
	mappedBase(t, b, "busybox", "busybox-mapped")
	d := startRemappedBuildkitd(t, dir)

	t.Run("run", func(t *testing.T) { testMappedRun(t, d, b) })
	t.Run("unmapped-base", func(t *testing.T) { testUnmappedBase(t, d, b) })
	t.Run("oci2-base", func(t *testing.T) { testMappedOCI2Base(t, d, b) })
}

// testMappedOCI2Base builds on an OCIv2 base of the daemon's store: its
// snapshot is written with host IDs (the mapping applied on the way in),
// so the RUN works as the remapped root and the oci2 export, which maps
// back, holds the image's own owners, the base's files included.
func testMappedOCI2Base(t *testing.T, d *bkDaemon, b *bases) {
	newStore(t, d.store).must("import", "oci:"+filepath.Join(b.dir, "busybox")+":latest", "--tag", "t/userns-base")
	ctx := t.TempDir()
	writeFiles(t, ctx, map[string]string{"Dockerfile": "FROM t/userns-base\n" +
		"RUN --network=none mkdir /data2 && echo hi > /data2/f && chown 1234:5678 /data2/f\n"})
	d.mustBuildctl(t, nil, ctx, "type=oci2,name=oci2-test/userns-oci2base")
	checkUnpacked(t, d, "oci2-test/userns-oci2base", map[string][2]uint32{
		"data2/f":     {1234, 5678},
		"bin/busybox": {0, 0},
		"etc/passwd":  {0, 0},
	})
}

// testMappedRun builds on a base whose layer holds host IDs, with a RUN
// step that chowns a file: the oci2 image must hold container IDs, as
// BuildKit's type=tar export of the same build does.
func testMappedRun(t *testing.T, d *bkDaemon, b *bases) {
	ctx := t.TempDir()
	df := "FROM busybox-mapped\n" +
		"RUN --network=none echo hi > /data/f && chown 1234:5678 /data/f\n" +
		"COPY app.txt /app.txt\n" +
		"COPY --chown=42:43 owned.txt /owned.txt\n"
	writeFiles(t, ctx, map[string]string{"Dockerfile": df, "app.txt": "app 1\n", "owned.txt": "owned\n"})
	wantOwners := map[string][2]uint32{
		"data/f":      {1234, 5678},
		"data":        {0, 0},
		"bin/busybox": {0, 0},
		"etc/passwd":  {0, 0},
		"app.txt":     {0, 0},
		"owned.txt":   {42, 43},
	}

	// the daemon really remaps: the snapshots hold host IDs
	m := d.mustBuildctl(t, b, ctx, "type=oci2,name=oci2-test/userns:1")
	checkHostOwner(t, d, "data/f", remapStart+1234, remapStart+5678)
	checkHostOwner(t, d, "owned.txt", remapStart+42, remapStart+43)
	checkHostOwner(t, d, "bin/busybox", remapStart, remapStart)
	st := statsOf(t, m)[0]
	t.Logf("first export: %s, %d files, tree %+v", digestOf(t, m), st.Stats.Files, st.Tree)
	got := checkUnpacked(t, d, "oci2-test/userns:1", wantOwners)
	compareWithBuildKit(t, d, b, ctx, got)

	// a changed COPY: the tree of the layers below comes from the tree
	// cache (host IDs, as walked) and only the new layer is read; the
	// mapping applies to the whole result again
	writeFiles(t, ctx, map[string]string{"app.txt": "app 2, changed\n"})
	m = d.mustBuildctl(t, b, ctx, "type=oci2,name=oci2-test/userns:2")
	st = statsOf(t, m)[0]
	t.Logf("after a change: %s, tree %+v", digestOf(t, m), st.Tree)
	if st.Tree.FullWalk != "" || st.Tree.LayersCached == 0 {
		t.Errorf("second export did not use the tree cache: %+v", st.Tree)
	}
	got2 := checkUnpacked(t, d, "oci2-test/userns:2", wantOwners)
	if a1, a2 := got["app.txt"], got2["app.txt"]; a1 != nil && a2 != nil && a1.Content == a2.Content {
		t.Errorf("second image: app.txt not changed")
	}
	compareWithBuildKit(t, d, b, ctx, got2)
}

// testUnmappedBase builds on the plain busybox base, whose files keep host
// IDs 0:0 on disk (see above), which the mapping cannot express: BuildKit's
// exporters leave them out, and so does the oci2 exporter (an image without
// its base: what upstream gives in this mode). Files the build adds are
// mapped.
func testUnmappedBase(t *testing.T, d *bkDaemon, b *bases) {
	ctx := t.TempDir()
	df := "FROM busybox\nCOPY app.txt /app.txt\nCOPY --chown=1234:5678 owned.txt /owned.txt\n"
	writeFiles(t, ctx, map[string]string{"Dockerfile": df, "app.txt": "app\n", "owned.txt": "owned\n"})
	d.mustBuildctl(t, b, ctx, "type=oci2,name=oci2-test/userns-unmapped")
	checkHostOwner(t, d, "owned.txt", remapStart+1234, remapStart+5678)
	got := checkUnpacked(t, d, "oci2-test/userns-unmapped", map[string][2]uint32{
		"app.txt": {0, 0}, "owned.txt": {1234, 5678}})
	if _, ok := got["bin/busybox"]; ok {
		t.Errorf("/bin/busybox (host 0:0, outside the mapping) exported")
	}
	compareWithBuildKit(t, d, b, ctx, got)
}

// compareWithBuildKit compares an unpacked image with BuildKit's type=tar
// (entries, owners, xattrs) and type=local (all but owners, which its
// receiver rewrites) exports of the same build.
func compareWithBuildKit(t *testing.T, d *bkDaemon, b *bases, ctx string, got map[string]*node) {
	t.Helper()
	tarFile := filepath.Join(t.TempDir(), "out.tar")
	d.mustBuildctl(t, b, ctx, "type=tar,dest="+tarFile)
	compareTarMeta(t, tarFile, got)
	if n := tarEntries(t, tarFile); n != len(got)-1 {
		t.Errorf("type=tar has %d entries, the unpacked image %d", n, len(got)-1)
	}
	local := filepath.Join(t.TempDir(), "local")
	d.mustBuildctl(t, b, ctx, "type=local,dest="+local)
	compareTrees(t, withoutOwners(snapshot(t, local)), withoutOwners(got), compareOptions{SkipRoot: true})
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mappedBase writes the base layout from with every owner shifted into
// the host range of the mapping, as dockerd's remapping snapshotters
// store image layers, plus /proc, /sys and /dev (runc's mount points) and
// /data, and adds it to b as name. Its files are then the container
// root's, and RUN steps can write in /data. The snapshot root stays host
// 0:0 whatever the layer says (see the top of this file).
func mappedBase(t *testing.T, b *bases, from, name string) {
	t.Helper()
	layout := filepath.Join(b.dir, from)
	var idx, mf struct {
		Manifests []struct{ Digest string } `json:"manifests"`
		Layers    []struct{ Digest string } `json:"layers"`
	}
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	readJSON(t, blobPath(layout, idx.Manifests[0].Digest), &mf)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range mf.Layers {
		mustRun(t, nil, "tar", "--numeric-owner", "--same-owner", "-xpf", blobPath(layout, l.Digest), "-C", rootfs)
	}
	for _, d := range []string{"proc", "sys", "dev", "data"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(rootfs, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid >= remapSize || st.Gid >= remapSize {
			return fmt.Errorf("%s: owner %d:%d outside the mapping", p, st.Uid, st.Gid)
		}
		// lchown clears set-id bits: restore them (not on symlinks)
		if err := os.Lchown(p, int(st.Uid)+remapStart, int(st.Gid)+remapStart); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return os.Chmod(p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "store")
	mustRun(t, nil, bin(t, "oci2"), "--store", store, "create", "--tag", name, "--source-date-epoch", "1700000000",
		"--cmd", "/bin/sh", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", rootfs)
	out := filepath.Join(b.dir, name)
	mustRun(t, nil, bin(t, "oci2"), "--store", store, "export", "--compression", "none", name, "oci:"+out+":latest")
	readJSON(t, filepath.Join(out, "index.json"), &idx)
	b.digests[name] = idx.Manifests[0].Digest
}

func blobPath(layout, dgst string) string {
	alg, enc, _ := strings.Cut(dgst, ":")
	return filepath.Join(layout, "blobs", alg, enc)
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// checkUnpacked unpacks name from the daemon's store and checks the owners
// of want, and that no entry has an owner outside the container's range
// (a host ID that was not mapped back).
func checkUnpacked(t *testing.T, d *bkDaemon, name string, want map[string][2]uint32) map[string]*node {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "unpacked")
	mustRun(t, nil, bin(t, "oci2"), "--store", d.store, "unpack", name, dest)
	got := snapshot(t, dest)
	for p, w := range want {
		n, ok := got[p]
		if !ok {
			t.Errorf("%s: /%s missing", name, p)
			continue
		}
		if n.UID != w[0] || n.GID != w[1] {
			t.Errorf("%s: /%s owned by %d:%d, want %d:%d (container IDs)", name, p, n.UID, n.GID, w[0], w[1])
		}
	}
	var host []string
	for p, n := range got {
		if p != "." && (n.UID >= remapSize || n.GID >= remapSize) {
			host = append(host, fmt.Sprintf("/%s %d:%d", p, n.UID, n.GID))
		}
	}
	if len(host) > 0 {
		t.Errorf("%s: %d entries keep host IDs, e.g. %q", name, len(host), host[:min(len(host), 5)])
	}
	return got
}

// checkHostOwner checks that one of the daemon's overlayfs snapshots holds
// rel owned by host IDs uid:gid, as the remapping daemon stores them (the
// build context's snapshot may hold a file of the same name too).
func checkHostOwner(t *testing.T, d *bkDaemon, rel string, uid, gid uint32) {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(d.root, "runc-overlayfs", "snapshots", "snapshots", "*", "fs", rel))
	var seen []string
	for _, p := range found {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid == uid && st.Gid == gid {
			return
		}
		seen = append(seen, fmt.Sprintf("%s %d:%d", p, st.Uid, st.Gid))
	}
	t.Errorf("no snapshot holds /%s owned by host IDs %d:%d (the daemon does not remap); found %q", rel, uid, gid, seen)
}

// tarEntries counts the entries of a tar file but its root.
func tarEntries(t *testing.T, tarFile string) int {
	t.Helper()
	out := mustRun(t, nil, "tar", "-tf", tarFile).Stdout
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if p := strings.TrimSuffix(strings.TrimPrefix(l, "./"), "/"); p != "" && p != "." {
			n++
		}
	}
	return n
}

// startRemappedBuildkitd starts buildkitd-oci2 like startBuildkitd, with
// [worker.oci] userRemapUnsupported = "oci2remap".
//
// The daemon resolves that name with github.com/moby/sys/user
// LoadIdentityMapping: LookupUser reads /etc/passwd and wants an entry of
// that name (no numeric form), then its ranges come from /etc/subuid and
// /etc/subgid. Rather than adding a user to the machine (and having to
// restore its files even when the test is killed), the daemon runs in a
// private mount namespace whose /etc is an overlay of the host's with
// passwd, subuid and subgid that have the user: nothing outside the test
// directory changes, and the mounts vanish with the daemon.
func startRemappedBuildkitd(t *testing.T, dir string) *bkDaemon {
	t.Helper()
	cfg := fmt.Sprintf("[worker.oci]\n  userRemapUnsupported = %q\n", remapUser)
	d := newBkDaemon(t, dir, []byte(cfg))

	// runc resolves the bundle's rootfs inside the user namespace, as host
	// ID 200000: every directory above it must be searchable by others
	// (buildkitd makes its root and the worker's 0700; dockerd, in
	// userns-remap mode, gives its root to the remapped root instead).
	// Without this: "error preparing rootfs: mount .../rootfs: permission
	// denied".
	for _, p := range []string{dir, d.root, filepath.Join(d.root, "runc-overlayfs")} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}

	upper, work := filepath.Join(dir, "etc-upper"), filepath.Join(dir, "etc-work")
	for _, p := range []string{upper, work} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if len(passwd) > 0 && passwd[len(passwd)-1] != '\n' {
		passwd = append(passwd, '\n')
	}
	passwd = append(passwd, remapUser+":x:65533:65533:oci2 test:/nonexistent:/usr/sbin/nologin\n"...)
	ranges := fmt.Sprintf("%s:%d:%d\n", remapUser, remapStart, remapSize)
	for name, data := range map[string][]byte{"passwd": passwd, "subuid": []byte(ranges), "subgid": []byte(ranges)} {
		if err := os.WriteFile(filepath.Join(upper, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// unshare execs sh, which execs the daemon: d.cmd's PID is the daemon's
	script := `mount -t overlay oci2-etc -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && shift 2 && exec "$@"`
	d.startCmd(t, exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh",
		upper, work, bin(t, "buildkitd-oci2")}, d.args("--oci-worker=true", "--containerd-worker=false")...)...))
	return d
}
