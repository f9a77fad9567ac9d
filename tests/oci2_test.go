package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// store drives the oci2 binary against one store directory.
type store struct {
	t   testing.TB
	dir string
	env []string // extra environment for every command
}

func newStore(t testing.TB, dir string) *store {
	return &store{t: t, dir: dir}
}

// run runs `oci2 --store DIR args...` without failing the test.
func (s *store) run(args ...string) result {
	s.t.Helper()
	return run(s.t.Context(), s.env, bin(s.t, "oci2"), append([]string{"--store", s.dir}, args...)...)
}

// must runs `oci2 --store DIR args...` and fails the test if it fails.
func (s *store) must(args ...string) result {
	s.t.Helper()
	return mustRun(s.t, s.env, bin(s.t, "oci2"), append([]string{"--store", s.dir}, args...)...)
}

// create snapshots src (tagged tag when not empty) and returns the digest
// `oci2 create --json` reports and the decoded JSON.
func (s *store) create(src, tag string, extra ...string) (string, map[string]any) {
	s.t.Helper()
	args := []string{"create", "--json"}
	if tag != "" {
		args = append(args, "--tag", tag)
	}
	args = append(append(args, extra...), src)
	r := s.must(args...)
	out := decodeJSON(s.t, r.Stdout)
	d := digestField(out)
	if d == "" {
		s.t.Fatalf("oci2 create --json printed no digest:\n%s", r.Stdout)
	}
	return d, out
}

// decodeJSON decodes one JSON object (the last one when several lines are
// printed).
func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n{"); i >= 0 {
		s = s[i+1:]
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, s)
	}
	return m
}

// digestField finds the image digest in create's JSON output.
func digestField(m map[string]any) string {
	for _, k := range []string{"digest", "index_digest", "image_digest"} {
		if v, ok := m[k].(string); ok && strings.HasPrefix(v, "sha256:") {
			return v
		}
	}
	return ""
}

// num reads a numeric JSON field (0 when absent).
func num(m map[string]any, key string) int64 {
	if stats, ok := m["stats"].(map[string]any); ok {
		if _, here := m[key]; !here {
			m = stats
		}
	}
	f, _ := m[key].(float64)
	return int64(f)
}
