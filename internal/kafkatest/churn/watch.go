package churn

// This file watches the group from the parent: its committed offsets (every
// decrease is a rewind) and its state and members (for the ghost and stuck
// checks),
// read from the embedded broker every 10ms.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// groupView is one reading of the group.
type groupView struct {
	state   string
	epoch   int32 // the generation, for a classic group
	members []kfake.GroupMember
	commits map[int32]int64
}

// watch polls the group. Its methods are safe for concurrent use.
type watch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex // guards the fields below; written by the polling goroutine
	last     groupView
	high     map[int32]int64 // highest commit seen per partition
	rewinds  []string
	shape    string   // state, epoch and assignments of the last reading
	timeline []string // one line per change of shape
}

// startWatch polls group every 10ms until stop, recording rewinds and
// every change of the group's state, epoch or assignments.
func startWatch(ctx context.Context, fake *kfake.Cluster, group, topic string, start time.Time) *watch {
	ctx, cancel := context.WithCancel(ctx)
	w := &watch{cancel: cancel, done: make(chan struct{}), high: map[int32]int64{}}
	go func() {
		defer close(w.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			w.poll(fake, group, topic, start)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watch) poll(fake *kfake.Cluster, group, topic string, start time.Time) {
	gi := fake.GroupInfo(group)
	if gi == nil {
		return
	}
	v := groupView{state: gi.State, epoch: gi.Epoch, members: gi.Members, commits: map[int32]int64{}}
	for p, c := range gi.Commits[topic] {
		v.commits[p] = c.Offset
	}
	at := time.Since(start).Round(time.Millisecond)
	shape := fmt.Sprintf("%s epoch %d: %s", gi.State, gi.Epoch, describeMembers(gi.Members))
	w.mu.Lock()
	defer w.mu.Unlock()
	if shape != w.shape {
		w.shape = shape
		w.timeline = append(w.timeline, fmt.Sprintf("%v %s; commits %v", at, shape, v.commits))
	}
	w.last = v
	for p, o := range v.commits {
		if h, ok := w.high[p]; ok && o < h {
			w.rewinds = append(w.rewinds, fmt.Sprintf("partition %d: committed %d after %d (at %v)", p, o, h, at))
		}
		if h, ok := w.high[p]; !ok || o > h {
			w.high[p] = o
		}
	}
}

// view returns the last reading.
func (w *watch) view() groupView {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.last
	v.commits = maps.Clone(v.commits)
	return v
}

// stop ends the polling after one last poll-free wait and returns the
// rewinds seen.
func (w *watch) stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.rewinds)
}

// timelineLines returns the group's changes seen so far.
func (w *watch) timelineLines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.timeline)
}

// describeMembers lists the members (id and the client address of their
// last JoinGroup) and their partitions. Members are not mapped to processes:
// clients open several connections, so an address does not name one.
func describeMembers(ms []kfake.GroupMember) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString("; ")
		}
		who := m.ClientHost
		fmt.Fprintf(&b, "%s (%s) owns", m.MemberID, who)
		for _, t := range slices.Sorted(maps.Keys(m.Assignment)) {
			fmt.Fprintf(&b, " %s%v", t, m.Assignment[t])
		}
	}
	return b.String()
}
