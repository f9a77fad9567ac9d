package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/store"
)

// The tests below re-execute the test binary as a child process running
// TestHelperProcess, selected by helperEnv = "<mode> <dir> <arg>".
const helperEnv = "OCI2_LOCAL_HELPER"

// startHelper starts a child in mode on dir; its stdout is returned.
func startHelper(t *testing.T, mode, dir string, arg int) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", helperEnv, mode, dir, arg))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// TestHelperProcess is the child's body; it does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper for TestCrash* (runs as a child process)")
	}
	var mode, dir string
	var arg int
	if _, err := fmt.Sscanf(spec, "%s %s %d", &mode, &dir, &arg); err != nil {
		t.Fatal(err)
	}
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "churn":
		err = churn(st, uint64(arg))
	case "refs":
		err = setRefs(st, arg)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// churn writes blobs and points refs at them until it is killed, printing
// one line per operation. It holds a lease throughout, as writers do.
func churn(st *Store, seed uint64) error {
	ctx := context.Background()
	release, err := st.Lease(ctx)
	if err != nil {
		return err
	}
	defer release()
	fmt.Println("leased")
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 100_000 { // bounded in case the parent dies
		size := 100 + rng.IntN(64<<10)
		if rng.IntN(8) == 0 {
			size = 256<<10 + rng.IntN(1<<20)
		}
		b := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(i), byte(i >> 8), byte(i >> 16)}).Read(b)
		d := digest.FromBytes(b)
		if i%2 == 0 {
			err = st.PutBlob(ctx, d, b)
		} else {
			err = st.WriteBlob(ctx, d, -1, strings.NewReader(string(b)))
		}
		if err != nil {
			return err
		}
		name := fmt.Sprintf("example.com/crash:r%d", rng.IntN(20))
		if rng.IntN(6) == 0 {
			err = st.DeleteRef(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				err = nil
			}
		} else {
			err = st.SetRef(ctx, name, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(size)})
		}
		if err != nil {
			return err
		}
		fmt.Println("op", i)
	}
	return nil
}

// setRefs sets refs p<pid>/r0..r<n-1> to the blob "ref target" and deletes
// the even ones, printing nothing.
func setRefs(st *Store, n int) error {
	ctx := context.Background()
	desc := refTarget()
	prefix := "example.com/p" + strconv.Itoa(os.Getpid())
	for i := range n {
		if err := st.SetRef(ctx, fmt.Sprintf("%s:r%d", prefix, i), desc); err != nil {
			return err
		}
	}
	for i := 0; i < n; i += 2 {
		if err := st.DeleteRef(ctx, fmt.Sprintf("%s:r%d", prefix, i)); err != nil {
			return err
		}
	}
	return nil
}

func refTarget() ocispec.Descriptor {
	b := []byte("ref target")
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// checkStore verifies the invariants a crash must not break.
func checkStore(t *testing.T, dir string) {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	ctx := t.Context()
	refs, err := st.ListRefs(ctx) // index.json parses
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		info, err := st.Stat(ctx, r.Descriptor.Digest)
		if err != nil || info.Size != r.Descriptor.Size {
			t.Fatalf("ref %s -> %s (%d bytes): %+v, %v", r.Name, r.Descriptor.Digest, r.Descriptor.Size, info, err)
		}
	}
	err = st.ListBlobs(ctx, func(i store.Info) error {
		_, err := st.ReadBlob(ctx, i.Digest, 0)
		return err
	})
	if err != nil {
		t.Fatalf("verifying blobs: %v", err)
	}
}

// TestCrashConsistency kills a writing child with SIGKILL at random points
// and checks the store each time.
func TestCrashConsistency(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	const iterations = 20
	ops, leftovers := 0, 0
	for it := range iterations {
		cmd, out := startHelper(t, "churn", dir, it)
		if !out.Scan() || out.Text() != "leased" {
			t.Fatalf("iteration %d: child did not start: %q %v", it, out.Text(), out.Err())
		}
		st, _ := Open(dir)
		if _, err := st.Exclusive(t.Context(), false); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("iteration %d: Exclusive while the child holds a lease: %v", it, err)
		}
		want := 1 + rng.IntN(40)
		for n := 0; n < want && out.Scan(); n++ {
			ops++
		}
		spin := rng.IntN(200_000) // a random extra moment, without a clock
		for range spin {
			syscall.Getpid()
		}
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil {
			t.Fatalf("iteration %d: child exited cleanly before being killed", it)
		}
		checkStore(t, dir)
		release, err := st.Exclusive(t.Context(), false) // the lease died with the child
		if err != nil {
			t.Fatalf("iteration %d: Exclusive after the child died: %v", it, err)
		}
		n, err := st.CleanIngest(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		leftovers += n
		release()
	}
	t.Logf("%d iterations, %d operations seen, %d temp files left by killed writers", iterations, ops, leftovers)
}

// TestConcurrentRefProcesses has two processes update refs at once while
// this one reads them: no update is lost and no read fails.
func TestConcurrentRefProcesses(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.PutBlob(ctx, refTarget().Digest, []byte("ref target")); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var cmds []*exec.Cmd
	for range 2 {
		cmd, _ := startHelper(t, "refs", dir, n)
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	reads := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := st.ListRefs(ctx); err != nil {
				t.Errorf("ListRefs during updates: %v", err)
				return
			}
			reads++
		}
	})
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	close(done)
	wg.Wait()
	refs, err := st.ListRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perChild := map[string]int{}
	for _, r := range refs {
		prefix, tag, _ := strings.Cut(r.Name, ":r")
		i, _ := strconv.Atoi(tag)
		if i%2 == 0 {
			t.Errorf("deleted ref %s is back", r.Name)
		}
		perChild[prefix]++
	}
	if len(perChild) != 2 || len(refs) != n {
		t.Fatalf("got %d refs from %d processes, want %d from 2: %v", len(refs), len(perChild), n, perChild)
	}
	t.Logf("%d reads of index.json during %d updates", reads, 3*n)
}
