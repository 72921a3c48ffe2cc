package interop_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pgServer is a throwaway PostgreSQL cluster: its own data directory, a free port on 127.0.0.1, trust auth for the
// superuser "postgres", and a Unix socket inside its own directory so it never touches a system-wide server.
type pgServer struct {
	bin  string // directory holding initdb, pg_ctl and psql
	dir  string // world-readable parent of data/, the socket and the log
	port int
	asPG bool // run server commands as the postgres user (PostgreSQL refuses to run as root)
}

// pgBinDir finds PostgreSQL's server programs: $INTEROP_PG_BIN, then the newest Debian cluster directory, then PATH.
func pgBinDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("INTEROP_PG_BIN"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	missing(t, "PostgreSQL (initdb, pg_ctl)")
	return ""
}

// pgMajor reads the major version out of /usr/lib/postgresql/<major>/bin, 0 when it is not a number.
func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// startPostgres initialises and starts a cluster, and stops it and removes its files when the test ends.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	s := &pgServer{bin: pgBinDir(t), asPG: os.Geteuid() == 0}
	for _, p := range []string{"initdb", "pg_ctl", "psql"} {
		if _, err := os.Stat(filepath.Join(s.bin, p)); err != nil {
			missing(t, "PostgreSQL's "+p)
		}
	}
	if s.asPG {
		if _, err := user.Lookup("postgres"); err != nil {
			missing(t, "the postgres system user (apt-get install postgresql creates it)")
		}
	}
	// os.MkdirTemp, not t.TempDir: the postgres user must be able to reach the directory, and t.TempDir's parent
	// is private to the test's user.
	dir, err := os.MkdirTemp("", "interop-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	s.dir = dir
	s.port = freePort(t)
	if s.asPG {
		out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput()
		require.NoError(t, err, "chown: %s", out)
	}
	data := filepath.Join(dir, "data")
	out, err := s.command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync").CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", s.port, dir)
	out, err = s.command("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		require.NoError(t, err, "pg_ctl start: %s\n%s", out, log)
	}
	t.Cleanup(func() {
		if out, err := s.command("pg_ctl", "-D", data, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
			t.Logf("pg_ctl stop: %v: %s", err, out)
		}
	})
	return s
}

// command runs one of PostgreSQL's programs, as the postgres user when the test runs as root.
func (s *pgServer) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, prog)
	if s.asPG {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// query runs one SQL statement through psql over TCP and returns its unaligned, tuples-only output lines.
func (s *pgServer) query(t *testing.T, sql string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "postgres",
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "\t", "-c", sql)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "psql %q: %s", sql, out)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// freePort asks the kernel for a port nobody listens on. Another process could take it before PostgreSQL binds it;
// on a test machine that is rare enough, and pg_ctl then fails loudly rather than silently.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}
