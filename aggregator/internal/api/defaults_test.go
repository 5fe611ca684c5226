package api

import (
	"log/slog"
	"testing"
	"time"
)

// Unset limits (zero or negative) take DefaultLimits' values; set ones stay.
func TestNewFillsUnsetLimits(t *testing.T) {
	f := func(in, want Limits) {
		t.Helper()
		a, err := New(Options{Logger: slog.New(slog.DiscardHandler), Limits: in})
		if err != nil {
			t.Fatal(err)
		}
		if a.opts.Limits != want {
			t.Errorf("New(%+v).Limits = %+v, want %+v", in, a.opts.Limits, want)
		}
	}
	def := DefaultLimits()
	f(Limits{}, def)
	f(Limits{MaxWireBytes: -1, MaxDecodedBytes: -1, MaxProcesses: -1, MaxConcurrent: -1, QueueTimeout: -1,
		MaxInflightBytes: -1, BodyTimeout: -1, MaxClockSkew: -1}, def)
	set := Limits{MaxWireBytes: 1 << 20, MaxDecodedBytes: 2 << 20, MaxProcesses: 5, MaxConcurrent: 2,
		QueueTimeout: time.Second, MaxInflightBytes: 8 << 20, BodyTimeout: time.Second, MaxClockSkew: time.Minute}
	f(set, set)
	// Unset inflight bytes: twice the decoded limit.
	want := def
	want.MaxDecodedBytes, want.MaxInflightBytes = 100<<20, 200<<20
	f(Limits{MaxDecodedBytes: 100 << 20}, want)
	// Never below one body of both limits.
	want = def
	want.MaxInflightBytes = def.MaxWireBytes + def.MaxDecodedBytes
	f(Limits{MaxInflightBytes: 1}, want)
}

func TestNewFillsUnsetStreamOptions(t *testing.T) {
	a, err := New(Options{Logger: slog.New(slog.DiscardHandler), OnlineWindow: -1, MaxStreams: 3})
	if err != nil {
		t.Fatal(err)
	}
	if a.opts.OnlineWindow != 10*time.Second || a.opts.HeartbeatInterval != 15*time.Second ||
		a.opts.MaxStreams != 3 || a.opts.MaxStreamsPerClient != 16 {
		t.Errorf("New filled %v %v %d %d, want 10s 15s 3 16",
			a.opts.OnlineWindow, a.opts.HeartbeatInterval, a.opts.MaxStreams, a.opts.MaxStreamsPerClient)
	}
}
