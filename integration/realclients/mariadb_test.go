//go:build linux

package realclients

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-apisix/stream/integration/internal/e2e"
)

// The MariaDB account of the seed document's walk-through (docker run …
// -e MYSQL_ROOT_PASSWORD=toor; mysql -u root -p).
const (
	dbUser     = "root"
	dbPassword = "toor"
)

// mariadb is a MariaDB server started from a fresh data directory.
type mariadb struct {
	*e2e.Proc
	ns     *netns
	socket string
	port   int
}

// startMariaDB initialises a data directory with mariadb-install-db,
// runs mariadbd on 127.0.0.1:port as a plain process, and gives root a
// password for TCP logins from 127.0.0.1 (where the proxy connects from)
// through the UNIX socket, which keeps password-less root access.
func (n *netns) startMariaDB(port int) *mariadb {
	n.t.Helper()
	need(n.t, "mariadb-install-db", "mariadbd", "mysql")
	dir := n.t.TempDir()
	data := filepath.Join(dir, "data")
	socket := filepath.Join(dir, "mysqld.sock")
	install := n.run("", "mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if install.err != nil {
		n.t.Fatalf("mariadb-install-db: %v\n%s", install.err, install.combined())
	}
	m := &mariadb{ns: n, socket: socket, port: port}
	m.Proc = n.start("mariadbd", "--no-defaults", "--datadir="+data, "--socket="+socket,
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--user=root",
		"--skip-name-resolve", "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--innodb-buffer-pool-size=16M", "--skip-log-bin")
	m.WaitReady(startWait, func() error {
		if _, err := os.Stat(socket); err != nil {
			return err
		}
		_, err := m.socketQuery("SELECT 1")
		return err
	})
	if _, err := m.socketQuery(fmt.Sprintf(
		"CREATE USER IF NOT EXISTS '%[1]s'@'127.0.0.1'; ALTER USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s'; GRANT ALL ON *.* TO '%[1]s'@'127.0.0.1'",
		dbUser, dbPassword)); err != nil {
		n.t.Fatal(err)
	}
	m.WaitReady(startWait, n.tcpReady(hostPort("127.0.0.1", port)))
	return m
}

// socketQuery runs SQL as root over the UNIX socket (not through any
// proxy) and returns the tab-separated rows.
func (m *mariadb) socketQuery(sql string) (string, error) {
	r := m.ns.run("", "mysql", "--no-defaults", "--socket="+m.socket, "-u", "root", "-N", "-B", "-e", sql)
	if r.err != nil {
		return "", fmt.Errorf("mysql via socket: %v: %s", r.err, r.combined())
	}
	return strings.TrimSpace(r.stdout), nil
}

// connections is the server's count of connection attempts, this
// query's own included.
func (m *mariadb) connections() int {
	m.ns.t.Helper()
	out, err := m.socketQuery("SHOW GLOBAL STATUS LIKE 'Connections'")
	if err != nil {
		m.ns.t.Fatal(err)
	}
	_, v, _ := strings.Cut(out, "\t")
	c, err := strconv.Atoi(v)
	if err != nil {
		m.ns.t.Fatalf("SHOW GLOBAL STATUS: %q", out)
	}
	return c
}

// tcpQuery runs the mysql client over TCP to host:port with the
// document's user and password, the way a user logs in.
func (n *netns) tcpQuery(host string, port int, sql string) result {
	return n.run("", "mysql", "--no-defaults", "--host="+host, fmt.Sprintf("--port=%d", port),
		"-u", dbUser, "-p"+dbPassword, "--connect-timeout=5", "-N", "-B", "-e", sql)
}

// lostConnection is the client's error when the proxy closes the
// connection before the server's greeting.
var lostConnection = regexp.MustCompile(`Lost connection to (MySQL |MariaDB )?server at '(handshake: )?reading initial communication packet'`)

// proxiedQuery is the query the tests send through the proxy, and what
// MariaDB answers: the value and the account it logged in as.
const (
	proxiedQuery = "SELECT CONCAT('proxied-', 6*7), CURRENT_USER()"
	proxiedRow   = "proxied-42\troot@127.0.0.1"
)

// mustQuery asserts that the login through host:port works and the query
// returns proxiedRow.
func mustQuery(t *testing.T, n *netns, host string, port int) {
	t.Helper()
	r := n.tcpQuery(host, port, proxiedQuery)
	if r.err != nil {
		t.Fatalf("mysql --host=%s --port=%d: %v\n%s", host, port, r.err, r.combined())
	}
	if got := strings.TrimSpace(r.stdout); got != proxiedRow {
		t.Fatalf("mysql --host=%s --port=%d: query returned %q, want %q", host, port, got, proxiedRow)
	}
}

// mustLoseConnection asserts the document's error: the proxy closes the
// connection before MariaDB's greeting, and the server saw nothing.
func mustLoseConnection(t *testing.T, n *netns, m *mariadb, host string, port int) {
	t.Helper()
	before := m.connections()
	r := n.tcpQuery(host, port, "SELECT 1")
	if r.err == nil {
		t.Fatalf("mysql --host=%s --port=%d logged in (%q); want the connection lost", host, port, r.stdout)
	}
	// mysql 8 prints "Lost connection to MySQL server at 'reading initial
	// communication packet'", MariaDB's client "Lost connection to server
	// at 'handshake: reading initial communication packet'".
	if !lostConnection.MatchString(r.stderr) {
		t.Fatalf("mysql --host=%s --port=%d: %q, want \"Lost connection … reading initial communication packet\"", host, port, r.stderr)
	}
	t.Logf("mysql --host=%s --port=%d: %s", host, port, strings.TrimSpace(r.stderr))
	// The count includes each socketQuery's own connection.
	if after := m.connections(); after != before+1 {
		t.Fatalf("MariaDB counted %d connections besides ours: the client was proxied", after-before-1)
	}
}
