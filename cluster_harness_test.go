package main

// The harness of the cluster tests: real isrproxy processes (this test
// binary re-executed, see TestExitHelperProcess) sharing a private
// redis-server, in front of one counting origin.

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/internal/redistest"
)

// replica is one isrproxy process of a cluster.
type replica struct {
	t      *testing.T
	node   string
	URL    string // public listener
	Admin  string
	cmd    *exec.Cmd
	logs   *syncBuffer
	waited chan struct{}
	client *http.Client
}

// clusterEnv is the environment of a replica named node.
func clusterEnv(originURL, redisURL, name, node string) map[string]string {
	return map[string]string{
		"ORIGIN_URL":        originURL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":         "info",
		"SHUTDOWN_TIMEOUT":  "2s",
		"GOMEMLIMIT":        "off",
		"REDIS_URL":         redisURL,
		"CLUSTER_NAME":      name,
		"NODE_ID":           node,
	}
}

// startReplica starts isrproxy with environ and waits until its /readyz
// answers 200 (ready false: only until it listens).
func startReplica(t *testing.T, environ map[string]string, ready bool) *replica {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ISRPROXY_TEST_MAIN=1")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	r := &replica{t: t, node: environ["NODE_ID"], cmd: cmd, logs: &syncBuffer{}, waited: make(chan struct{}),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 100}}}
	cmd.Stderr = r.logs
	require.NoError(t, cmd.Start())
	listening := make(chan Listeners, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				switch m["msg"] {
				case "request":
					continue // the access log is not kept
				case "isrproxy serving":
					pub, _ := m["listen"].(string)
					adm, _ := m["admin"].(string)
					listening <- Listeners{Public: pub, Admin: adm}
				}
			}
			r.logs.Write([]byte(line + "\n"))
		}
		cmd.Wait()
		close(r.waited)
	}()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", r.node, r.logs.String())
		}
	})
	select {
	case l := <-listening:
		r.URL, r.Admin = "http://"+l.Public, "http://"+l.Admin
	case <-r.waited:
		t.Fatalf("replica %s exited at start:\n%s", r.node, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("replica %s did not start:\n%s", r.node, r.logs.String())
	}
	if ready {
		require.Eventually(t, func() bool { return r.readyz() == http.StatusOK }, 20*time.Second, 20*time.Millisecond,
			"replica %s never ready:\n%s", r.node, r.logs.String())
	}
	return r
}

// kill ends the process (continuing it first if it is stopped).
func (r *replica) kill() {
	select {
	case <-r.waited:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGCONT)
	r.cmd.Process.Kill()
	<-r.waited
}

func (r *replica) pause()  { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGSTOP)) }
func (r *replica) resume() { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGCONT)) }

func (r *replica) readyz() int {
	resp, err := http.Get(r.Admin + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (r *replica) readyzBody() (int, string) {
	resp, err := http.Get(r.Admin + "/readyz")
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// siteHost is the Host every request names, as a load balancer in front
// of the replicas passes the visitor's: the replicas share its keys.
const siteHost = "www.example.test"

// fetch gets path, with optional header pairs; safe from any goroutine
// (no assertion).
func (r *replica) fetch(path string, header ...string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, r.URL+path, nil)
	if err != nil {
		return answer{}, err
	}
	req.Host = siteHost
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, err
}

// get fetches path.
func (r *replica) get(path string, header ...string) answer {
	r.t.Helper()
	a, err := r.fetch(path, header...)
	require.NoError(r.t, err)
	return a
}

// revalidate calls the API with query.
func (r *replica) revalidate(query string) (int, revalidateAnswer) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.URL+"/api/revalidate?"+query, nil)
	require.NoError(r.t, err)
	req.Host = siteHost
	req.Header.Set("Authorization", "Bearer "+apiSecret)
	resp, err := r.client.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	var a revalidateAnswer
	require.NoError(r.t, json.NewDecoder(resp.Body).Decode(&a))
	return resp.StatusCode, a
}

// revalidateAnswer is the API's JSON answer.
type revalidateAnswer struct {
	Revalidated bool     `json:"revalidated"`
	Message     string   `json:"message"`
	Unconfirmed []string `json:"unconfirmed"`
	Results     []struct {
		Path        string   `json:"path"`
		Outcome     string   `json:"outcome"`
		Error       string   `json:"error"`
		Replicas    []string `json:"replicas"`
		Unconfirmed []string `json:"unconfirmed"`
	} `json:"results"`
}

// metric reads one sample (name with its labels, as exposed).
func (r *replica) metric(name string) float64 {
	r.t.Helper()
	v, err := metricErr(r.Admin, name)
	require.NoError(r.t, err)
	return v
}

// countingOrigin answers "<path> v<version>" and counts requests per path.
type countingOrigin struct {
	*testOrigin
	version atomic.Int64
	mu      sync.Mutex
	counts  map[string]int
	delay   atomic.Int64 // nanoseconds each answer waits
}

func newCountingOrigin(t *testing.T) *countingOrigin {
	o := &countingOrigin{counts: map[string]int{}}
	o.version.Store(1)
	o.testOrigin = newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.URL.Path]++
		o.mu.Unlock()
		time.Sleep(time.Duration(o.delay.Load()))
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.URL.Path+" v"+itoa(o.version.Load()))
	})
	return o
}

func (o *countingOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// startCluster starts redis-server and n replicas named a, b, c …
func startCluster(t *testing.T, o *countingOrigin, n int) (*redistest.Server, []*replica) {
	t.Helper()
	return startClusterEnv(t, o, n, nil)
}

// startClusterEnv is startCluster with env added to each replica's.
func startClusterEnv(t *testing.T, o *countingOrigin, n int, env map[string]string) (*redistest.Server, []*replica) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server and replicas")
	}
	rs := redistest.Start(t)
	var rs2 []*replica
	for i := range n {
		node := string(rune('a' + i))
		e := clusterEnv(o.URL, rs.URL(), "t", node)
		for k, v := range env {
			e[k] = v
		}
		rs2 = append(rs2, startReplica(t, e, true))
	}
	waitReplicas(t, rs2, n)
	return rs, rs2
}

// waitReplicas waits until every replica of rs sees n live replicas.
func waitReplicas(t *testing.T, rs []*replica, n int) {
	t.Helper()
	for _, r := range rs {
		require.Eventually(t, func() bool {
			v, err := metricErr(r.Admin, "isrproxy_cluster_replicas")
			return err == nil && v == float64(n)
		}, 20*time.Second, 50*time.Millisecond, "replica %s sees %d replicas", r.node, n)
	}
}

// cutter forwards TCP connections to a Redis until cut: then it drops
// every connection and refuses new ones, like a network partition.
type cutter struct {
	ln     net.Listener
	target string
	cutOff atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if c.cutOff.Load() {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns[in], c.conns[out] = true, true
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close(); in.Close() }()
			go func() { io.Copy(in, out); out.Close(); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) URL() string { return "redis://" + c.ln.Addr().String() }

func (c *cutter) cut() {
	c.cutOff.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		conn.Close()
	}
	c.conns = map[net.Conn]bool{}
}

func (c *cutter) restore() { c.cutOff.Store(false) }
