package registrytest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oci2/oci2/internal/testenv"
)

// EnvBinary names the registry binary when it is not on PATH.
const EnvBinary = "OCI2_REGISTRY_BIN"

// Binary finds the registry binary: $OCI2_REGISTRY_BIN, `registry` on PATH,
// or bin/registry of this module (where scripts/build-registry.sh puts it).
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvBinary, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("registry"); err == nil {
		return p, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "registry")
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p), nil
		}
	}
	return "", errors.New("registry binary not found: run scripts/build-registry.sh, put it on PATH or set $" + EnvBinary)
}

// Require returns the registry binary; when it is missing, t skips on a
// developer machine and fails under CI=true (testenv.Unavailable).
func Require(t testing.TB) string {
	t.Helper()
	p, err := Binary()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	return p
}

// Options configure a registry server.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA made
	// for this server (Server.CAFile, Server.CertPool).
	TLS bool
	// Users enables htpasswd (basic) auth with these user -> password pairs.
	Users map[string]string
}

// Server is a running registry.
type Server struct {
	Host     string // 127.0.0.1:port
	Dir      string // storage and config
	CAFile   string // PEM of the CA when TLS
	CertPool *x509.CertPool
	cmd      *exec.Cmd
	logs     *bytes.Buffer
}

// URL is the base URL of the server.
func (s *Server) URL() string {
	if s.CAFile != "" {
		return "https://" + s.Host
	}
	return "http://" + s.Host
}

// Logs returns what the registry printed.
func (s *Server) Logs() string { return s.logs.String() }

// Start runs a registry on a free port of 127.0.0.1 with its storage in a
// temporary directory; it is stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	binary := Require(t)
	dir := t.TempDir()
	s := &Server{Dir: dir, logs: &bytes.Buffer{}}
	var extra strings.Builder
	if opts.TLS {
		ca, err := NewCA()
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := ca.Issue("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		s.CAFile = filepath.Join(dir, "ca.pem")
		s.CertPool = ca.Pool()
		mustWrite(t, s.CAFile, ca.PEM)
		mustWrite(t, filepath.Join(dir, "cert.pem"), certPEM)
		mustWrite(t, filepath.Join(dir, "key.pem"), keyPEM)
		fmt.Fprintf(&extra, "  tls:\n    certificate: %s\n    key: %s\n",
			filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	}
	if len(opts.Users) > 0 {
		var hp strings.Builder
		for u, p := range opts.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&hp, "%s:%s\n", u, h)
		}
		mustWrite(t, filepath.Join(dir, "htpasswd"), []byte(hp.String()))
		fmt.Fprintf(&extra, "auth:\n  htpasswd:\n    realm: oci2-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Host = fmt.Sprintf("127.0.0.1:%d", port)
		// The tls lines continue the http section, which comes last.
		cfg := fmt.Sprintf(configTemplate, filepath.Join(dir, "storage"), s.Host, "oci2-test-secret") + extra.String()
		mustWrite(t, filepath.Join(dir, "config.yml"), []byte(cfg))
		s.logs.Reset()
		cmd := exec.Command(binary, "serve", filepath.Join(dir, "config.yml"))
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		cmd.Stdout, cmd.Stderr = s.logs, s.logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting registry: %v", err)
		}
		s.cmd = cmd
		if lastErr = s.waitReady(cmd); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
		s.stop()
	}
	t.Fatalf("registry did not start: %v\n%s", lastErr, s.logs.String())
	return nil
}

// configTemplate: storage dir, listen address, secret. The http section is
// last: TLS lines are appended to it, then the auth section.
const configTemplate = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
`

func (s *Server) waitReady(cmd *exec.Cmd) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	client := &http.Client{Timeout: time.Second}
	if s.CertPool != nil {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool}}
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("registry exited: %v", err)
		default:
		}
		resp, err := client.Get(s.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 200, or 401 with auth: either way it serves.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				go func() { <-exited }()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("registry not ready after 20s")
}

func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd = nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mustWrite(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// DockerConfig writes a docker config.json granting user:password on host
// into a new directory and returns it (for $DOCKER_CONFIG).
func DockerConfig(t testing.TB, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64Std(user + ":" + password)
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	mustWrite(t, filepath.Join(dir, "config.json"), []byte(cfg))
	return dir
}
