package api

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"

	"github.com/procscope/procscope/aggregator/internal/httpapi"
	"github.com/procscope/procscope/aggregator/snapshot"
)

// The delta answer of GET /api/v1/snapshots/{id}/processes?since={older}:
// a page showing a live host holds the list of the snapshot before, and
// fetching the whole list again with every snapshot cost its main thread
// more than drawing it (a 2,000-process list is ~480 KB of JSON; most rows
// are the same as 2 s before). The answer holds the rows that are new or
// differ in anything the full answer would show, and the pids gone, so
// that the list the client rebuilds from it equals the full answer.

const sinceRefusal = ": fetch the processes without since"

// processDelta answers ?since=: both lists are read as the full answer
// reads one (the store's decoded keyframes), and compared in pid order.
func (a *API) processDelta(r *http.Request, id int64, sinceText string) (any, error) {
	since, ok, outOfRange := parseID(sinceText)
	if outOfRange {
		return nil, httpapi.New(httpapi.KindNotFound, "since: no such snapshot"+sinceRefusal)
	}
	if !ok {
		return nil, httpapi.New(httpapi.KindBadRequest, "since must be a positive integer, the id of an older snapshot of the same host")
	}
	ctx := r.Context()
	st := a.currentStore()
	to, err := st.Snapshot(ctx, id)
	if err != nil {
		return nil, storeError(ctx, err, "no such snapshot")
	}
	from, err := st.Snapshot(ctx, since)
	if err != nil {
		return nil, storeError(ctx, err, "since: no such snapshot (unknown, or deleted by retention)"+sinceRefusal)
	}
	if from.Hostname != to.Hostname {
		return nil, httpapi.New(httpapi.KindBadRequest, "since is a snapshot of another host"+sinceRefusal)
	}
	// A host has one snapshot per captured_at (a second is a replay of
	// the first), so "older" is captured earlier.
	if !from.CapturedAt.Before(to.CapturedAt) {
		return nil, httpapi.New(httpapi.KindBadRequest, "since must be a snapshot captured before the one asked for"+sinceRefusal)
	}
	old, err := st.Processes(ctx, since)
	if err != nil {
		return nil, storeError(ctx, err, "since: no such snapshot (deleted by retention)"+sinceRefusal)
	}
	cur, err := st.Processes(ctx, id)
	if err != nil {
		return nil, storeError(ctx, err, "no such snapshot")
	}
	d, ok := diffProcessLists(old, cur)
	if !ok {
		// Ingest refuses a pid twice; a list that holds one anyway cannot
		// be patched by pid.
		return nil, httpapi.New(httpapi.KindBadRequest, "these snapshots cannot be compared by pid"+sinceRefusal)
	}
	d.id, d.since = id, since
	return d, nil
}

// processDeltaList is the delta answer. changed indexes cur, in its order.
type processDeltaList struct {
	id, since int64
	cur       []snapshot.Process
	changed   []int32
	gone      []int64
	// ascending: cur is in ascending pid order (exporters list /proc in
	// that order), so the client's rebuilt list needs no order sent.
	ascending bool
}

// pidOrder is the indexes of procs in ascending pid order, or nil when
// procs already are in it (the common case: no allocation).
func pidOrder(procs []snapshot.Process) []int32 {
	if pidsAscending(procs) {
		return nil
	}
	idx := make([]int32, len(procs))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		switch pa, pb := procs[a].PID, procs[b].PID; {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return 0
	})
	return idx
}

func pidsAscending(procs []snapshot.Process) bool {
	for i := 1; i < len(procs); i++ {
		if procs[i].PID <= procs[i-1].PID {
			return false
		}
	}
	return true
}

// diffProcessLists walks both lists in pid order. A row is changed when
// its encoding differs (appendProcess: exactly what the full answer would
// send, so a reused pid, a rename or a new number all count, and nothing
// the client cannot see does). ok is false when a list holds a pid twice.
func diffProcessLists(old, cur []snapshot.Process) (*processDeltaList, bool) {
	oi, ci := pidOrder(old), pidOrder(cur)
	at := func(idx []int32, k int) int {
		if idx == nil {
			return k
		}
		return int(idx[k])
	}
	d := &processDeltaList{cur: cur, ascending: ci == nil}
	var ea, eb []byte
	i, j := 0, 0
	prevOld, prevCur := int64(-1), int64(-1)
	for i < len(old) || j < len(cur) {
		var po, pc *snapshot.Process
		if i < len(old) {
			po = &old[at(oi, i)]
			if po.PID == prevOld {
				return nil, false
			}
		}
		if j < len(cur) {
			pc = &cur[at(ci, j)]
			if pc.PID == prevCur {
				return nil, false
			}
		}
		switch {
		case pc == nil || (po != nil && po.PID < pc.PID):
			d.gone = append(d.gone, po.PID)
			prevOld = po.PID
			i++
		case po == nil || pc.PID < po.PID:
			d.changed = append(d.changed, int32(at(ci, j)))
			prevCur = pc.PID
			j++
		default:
			ea, eb = appendProcess(ea[:0], po), appendProcess(eb[:0], pc)
			if !bytes.Equal(ea, eb) {
				d.changed = append(d.changed, int32(at(ci, j)))
			}
			prevOld, prevCur = po.PID, pc.PID
			i++
			j++
		}
	}
	if ci != nil {
		slices.Sort(d.changed) // the snapshot's own order
	}
	return d, true
}

// AppendJSON writes {"snapshot_id", "since", "process_count", "changed",
// "gone"} and, when the snapshot's rows are not in ascending pid order,
// "pids": the order of the whole list.
func (d *processDeltaList) AppendJSON(s *httpapi.Stream, b []byte) []byte {
	b = append(b, `{"snapshot_id":`...)
	b = strconv.AppendInt(b, d.id, 10)
	b = append(b, `,"since":`...)
	b = strconv.AppendInt(b, d.since, 10)
	b = append(b, `,"process_count":`...)
	b = strconv.AppendInt(b, int64(len(d.cur)), 10)
	b = append(b, `,"changed":[`...)
	var ok bool
	for k, i := range d.changed {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendProcess(b, &d.cur[i])
		if b, ok = s.Flush(b); !ok {
			return b // the client is gone
		}
	}
	b = append(b, `],"gone":`...)
	if b, ok = appendPIDs(s, b, len(d.gone), func(k int) int64 { return d.gone[k] }); !ok {
		return b
	}
	if !d.ascending {
		b = append(b, `,"pids":`...)
		if b, ok = appendPIDs(s, b, len(d.cur), func(k int) int64 { return d.cur[k].PID }); !ok {
			return b
		}
	}
	return append(b, '}')
}

// appendPIDs writes a JSON array of n pids; ok is false once the client
// is gone.
func appendPIDs(s *httpapi.Stream, b []byte, n int, pid func(int) int64) (_ []byte, ok bool) {
	b = append(b, '[')
	for k := range n {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, pid(k), 10)
		if k%1024 == 1023 {
			if b, ok = s.Flush(b); !ok {
				return b, false
			}
		}
	}
	return append(b, ']'), true
}
