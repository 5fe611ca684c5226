package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procscope/procscope/internal/testutil"
	"github.com/procscope/procscope/tools/loadgen/gen"
)

// serverEnv makes the test binary an ingest stand-in instead of running
// tests (see TestMain): the benchmark's server runs in another process,
// so that the CPU time the benchmark counts is the client's alone.
const serverEnv = "LOADGEN_TEST_INGEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		os.Exit(serveStandIn())
	}
	os.Exit(m.Run())
}

// serveStandIn answers every POST with 201 and a snapshot id after reading
// the body, as the aggregator does, until its stdin closes (the parent
// ended).
func serveStandIn() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = ln.Close()
	}()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, `{"error":"read"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"snapshot_id":1}`+"\n")
	})}
	_ = srv.Serve(ln)
	return 0
}

// startStandIn runs serveStandIn in a child process and returns its URL.
func startStandIn(b *testing.B) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // our own child, by its PID
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("stand-in server: %v", err)
	}
	return "http://" + strings.TrimSpace(line)
}

// pushNetHTTP is the push as it was made with net/http before pushConn:
// the baseline of BenchmarkPushClient.
func pushNetHTTP(ctx context.Context, client *http.Client, url, key string, head, tail []byte, respBuf *bytes.Buffer) (int, int64, error) {
	body := append(append(make([]byte, 0, len(head)+len(tail)), head...), tail...)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("X-API-KEY", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	respBuf.Reset()
	_, _ = respBuf.ReadFrom(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return resp.StatusCode, snapshotID(respBuf.Bytes()), nil
}

// BenchmarkPushClient compares the generator's own CPU time per push
// (cpu-µs/op, user+system from getrusage, the server being another
// process) of the old net/http push and pushConn, with 32 simulated hosts
// pushing back to back on their own connections and a real 6.7 KiB
// body. Kernel time for the loopback TCP is in both.
//
//	go test -run '^$' -bench PushClient -benchtime 20000x -count 3 ./tools/loadgen
func BenchmarkPushClient(b *testing.B) {
	base := startStandIn(b)
	ingest := base + "/api/v1/ingest"
	gh := gen.NewHost(300, gen.Seed("bench", 0), false, 100*time.Millisecond)
	tail, err := gen.CompressTail(gh.SystemInfo(), gh.Processes(), gzip.BestSpeed)
	if err != nil {
		b.Fatal(err)
	}
	const hosts = 32
	at := "2026-11-25T17:00:00.000Z"
	run := func(b *testing.B, one func(h int, head []byte) (int, int64, error)) {
		b.ReportAllocs()
		heads := make([][]byte, hosts)
		for h := range heads {
			heads[h] = gen.HeadMember(gen.QuoteHostname(fmt.Sprintf("host-%d", h)), at)
		}
		var wg sync.WaitGroup
		errs := make(chan error, hosts)
		b.ResetTimer()
		cpu0 := testutil.SelfCPU()
		for h := range hosts {
			n := b.N / hosts
			if h < b.N%hosts {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					code, id, err := one(h, heads[h])
					if err == nil && (code != 201 || id != 1) {
						err = fmt.Errorf("answer %d id %d", code, id)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		cpu := testutil.SelfCPU() - cpu0
		b.StopTimer()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("nethttp", func(b *testing.B) {
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: hosts * 2, MaxIdleConnsPerHost: hosts * 2, DisableCompression: true, WriteBufferSize: 32 << 10,
		}}
		defer client.CloseIdleConnections()
		bufs := make([]bytes.Buffer, hosts)
		keys := make([]string, hosts)
		for h := range keys {
			keys[h] = fmt.Sprint("key-", h)
		}
		run(b, func(h int, head []byte) (int, int64, error) {
			return pushNetHTTP(context.Background(), client, ingest, keys[h], head, tail, &bufs[h])
		})
	})
	b.Run("pushconn", func(b *testing.B) {
		target, err := newPushTarget(ingest, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		conns := make([]*pushConn, hosts)
		for h := range conns {
			if conns[h], err = newPushConn(target, fmt.Sprint("key-", h)); err != nil {
				b.Fatal(err)
			}
			defer conns[h].close()
		}
		run(b, func(h int, head []byte) (int, int64, error) {
			code, body, err := conns[h].post(context.Background(), head, tail)
			return code, snapshotID(body), err
		})
	})
}
