// Package brokerfault breaks a running embedded broker (kfake) the way a
// real cluster misbehaves, for the chaos and soak commands: partition
// leaders move (one, or all at once), group coordinators move, a broker
// leaves and comes back on its port (under a new node id: see removeNode),
// connections carrying one kind of request are cut for a while, requests
// of one kind are answered with a real error code (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS, REQUEST_TIMED_OUT, and UNKNOWN_SERVER_ERROR
// as the error a client has never seen), and a member process is frozen
// past its session timeout (through the caller's Freeze hook).
//
// Everything uses kfake's own controls: MoveTopicPartition,
// ShufflePartitionLeaders, RehashCoordinators, RemoveNode/AddNode,
// ControlKey (a cut: the control answers with an error, which closes the
// client's connection) and Fault (error codes). Run undoes every fault it
// made before it returns.
package brokerfault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrBadConfig is returned (wrapped, naming the field) by Run for a Config
// it cannot use.
var ErrBadConfig = errors.New("brokerfault: bad config")

// Config says what to break and how often.
type Config struct {
	Topic      string // the topic whose partition leaders move. Required.
	Partitions int32  // its partitions. Required.
	// Duration bounds the faults: none starts after it (0: until ctx ends).
	Duration time.Duration
	// MinGap and MaxGap bound the pause between two faults. Default 1s and
	// 2.5s.
	MinGap, MaxGap time.Duration
	// Hold is how long a cut, an error code or a removed broker lasts.
	// Default 1.5s.
	Hold time.Duration
	// FreezeMin and FreezeMax bound how long a member is frozen; set them
	// past the session timeout. Default 4s and 5s.
	FreezeMin, FreezeMax time.Duration
}

// Hooks connect the faults to the caller's bookkeeping. Begin is required;
// Freeze may be nil (no member is frozen) and Logf too.
type Hooks struct {
	// Begin records that a fault of the given kind starts; Run calls the
	// returned end when the fault is undone (at once for a move).
	Begin func(kind string) (end func())
	// Freeze freezes a member for d and reports whether one was eligible.
	Freeze func(d time.Duration) bool
	Logf   func(format string, args ...any)
}

// request is a kind of request that can be cut or failed, with the error
// codes a real broker answers it with in a fault.
type request struct {
	name     string
	key      kmsg.Key
	topLevel bool // the request has only a top-level error code
	codes    []*kerr.Error
}

var requests = []request{
	{"fetch", kmsg.Fetch, false, []*kerr.Error{kerr.NotLeaderForPartition}},
	{"list-offsets", kmsg.ListOffsets, false, []*kerr.Error{kerr.NotLeaderForPartition}},
	{"commit", kmsg.OffsetCommit, false, []*kerr.Error{kerr.NotCoordinator,
		kerr.CoordinatorLoadInProgress, kerr.RequestTimedOut, kerr.UnknownServerError}},
	{"offset-fetch", kmsg.OffsetFetch, false, []*kerr.Error{kerr.NotCoordinator, kerr.CoordinatorLoadInProgress}},
	{"heartbeat", kmsg.Heartbeat, true, []*kerr.Error{kerr.NotCoordinator, kerr.CoordinatorLoadInProgress}},
	{"join", kmsg.JoinGroup, true, []*kerr.Error{kerr.NotCoordinator, kerr.CoordinatorLoadInProgress}},
	{"sync", kmsg.SyncGroup, true, []*kerr.Error{kerr.NotCoordinator}},
}

// Kinds is every kind of fault Run makes, by category; a fault's label is
// the category, with the request and the error code for cut and err.
var Kinds = []string{"move", "shuffle", "rehash", "node", "cut", "err", "freeze"}

func (c *Config) fill() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MinGap, time.Second)
	def(&c.MaxGap, 2500*time.Millisecond)
	def(&c.Hold, 1500*time.Millisecond)
	def(&c.FreezeMin, 4*time.Second)
	def(&c.FreezeMax, 5*time.Second)
	switch {
	case c.Topic == "" || c.Partitions < 1:
		return fmt.Errorf("%w: Topic %q, Partitions %d", ErrBadConfig, c.Topic, c.Partitions)
	case c.Duration < 0:
		return fmt.Errorf("%w: Duration %v", ErrBadConfig, c.Duration)
	case c.MinGap < 0 || c.MaxGap < c.MinGap:
		return fmt.Errorf("%w: MinGap %v, MaxGap %v", ErrBadConfig, c.MinGap, c.MaxGap)
	case c.Hold < 0:
		return fmt.Errorf("%w: Hold %v", ErrBadConfig, c.Hold)
	case c.FreezeMin < 0 || c.FreezeMax < c.FreezeMin:
		return fmt.Errorf("%w: FreezeMin %v, FreezeMax %v", ErrBadConfig, c.FreezeMin, c.FreezeMax)
	}
	return nil
}

// Run breaks fake every MinGap..MaxGap until cfg.Duration has passed or ctx
// ends, then undoes what is still broken (a removed broker comes back, a
// cut or error code is lifted) and returns once everything it started has
// returned. fake must still have the brokers it started with: Run maps
// node ids 0..n-1 to the ports of fake.ListenAddrs() to bring a removed
// broker back on its port. The error is for a bad config or a broker that
// could not come back.
func Run(ctx context.Context, fake *kfake.Cluster, cfg Config, hooks Hooks) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	if hooks.Begin == nil {
		return fmt.Errorf("%w: Hooks.Begin is nil", ErrBadConfig)
	}
	logf := hooks.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ports := map[int32]int{}
	for i, a := range fake.ListenAddrs() {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("brokerfault: broker address %q: %w", a, err)
		}
		ports[int32(i)], _ = strconv.Atoi(p)
	}
	r := &runner{fake: fake, cfg: cfg, hooks: hooks, logf: logf, ports: ports, up: map[int32]bool{},
		zombies: map[int32]bool{}}
	for n := range ports {
		r.up[n] = true
		r.nextID = max(r.nextID, n)
	}
	// kfake keeps serving the connections open to a removed broker (as a
	// broker that leads nothing; see
	// TestKfakeRemovedBrokerKeepsServingItsConnections); a real broker's
	// connections die with it. This control closes such a connection at
	// its next request. Removed ids are never reused (removeNode), so no
	// live broker answers for them.
	fake.ControlKey(-1, func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		r.mu.Lock()
		zombie := r.zombies[fake.CurrentNode()]
		r.mu.Unlock()
		if zombie {
			return nil, errors.New("brokerfault: connection to a removed broker"), true
		}
		return nil, nil, false
	})
	var until <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		until = t.C
	}
	// undo ends when the faults stop: every held fault is lifted then.
	undo, lift := context.WithCancel(context.Background())
	defer func() {
		lift()
		r.wg.Wait()
	}()
	for {
		gap := cfg.MinGap + time.Duration(rand.Int64N(int64(cfg.MaxGap-cfg.MinGap)+1))
		select {
		case <-ctx.Done():
			lift()
			r.wg.Wait()
			return r.err()
		case <-until:
			lift()
			r.wg.Wait()
			return r.err()
		case <-time.After(gap):
		}
		r.one(undo)
	}
}

// runner holds one Run's state.
type runner struct {
	fake  *kfake.Cluster
	cfg   Config
	hooks Hooks
	logf  func(string, ...any)
	ports map[int32]int
	wg    sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	up      map[int32]bool
	zombies map[int32]bool // removed node ids, whose connections are closed
	nextID  int32          // the highest node id used so far
	removed bool           // a broker is out (one at a time, so a majority stays)
	errs    []error
}

func (r *runner) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

func (r *runner) nodes() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ns []int32
	for n, up := range r.up {
		if up {
			ns = append(ns, n)
		}
	}
	return ns
}

// hold runs undo once the hold is over or the faults stop, in its own
// goroutine, and then ends the fault's event.
func (r *runner) hold(stop context.Context, end func(), undo func()) {
	r.wg.Go(func() {
		t := time.NewTimer(r.cfg.Hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop.Done():
		}
		undo()
		end()
	})
}

// one makes one fault, chosen uniformly among the kinds that can happen
// now.
func (r *runner) one(stop context.Context) {
	for {
		switch Kinds[rand.IntN(len(Kinds))] {
		case "move":
			ns := r.nodes()
			p := rand.Int32N(r.cfg.Partitions)
			n := ns[rand.IntN(len(ns))]
			end := r.hooks.Begin("move")
			if err := r.fake.MoveTopicPartition(r.cfg.Topic, p, n); err != nil {
				r.logf("brokerfault: move partition %d to node %d: %v", p, n, err)
			}
			end()
			return
		case "shuffle":
			end := r.hooks.Begin("shuffle")
			r.fake.ShufflePartitionLeaders()
			end()
			return
		case "rehash":
			end := r.hooks.Begin("rehash")
			r.fake.RehashCoordinators()
			end()
			return
		case "node":
			if !r.removeNode(stop) {
				continue
			}
			return
		case "cut":
			q := requests[rand.IntN(len(requests))]
			end := r.hooks.Begin("cut " + q.name)
			until := time.Now().Add(r.cfg.Hold)
			var lifted sync.Once
			done := make(chan struct{})
			r.fake.ControlKey(int16(q.key), func(kmsg.Request) (kmsg.Response, error, bool) {
				select {
				case <-done:
				default:
					if time.Now().Before(until) {
						r.fake.KeepControl()
						return nil, errors.New("brokerfault: connection cut"), true
					}
				}
				r.fake.DropControl()
				return nil, nil, false
			})
			r.hold(stop, end, func() { lifted.Do(func() { close(done) }) })
			return
		case "err":
			q := requests[rand.IntN(len(requests))]
			code := q.codes[rand.IntN(len(q.codes))]
			end := r.hooks.Begin("err " + q.name + " " + codeName(code))
			h := r.fake.Fault(kfake.Fault{Keys: []kmsg.Key{q.key}, Err: code, Count: -1, TopLevel: q.topLevel})
			r.hold(stop, end, h.Remove)
			return
		case "freeze":
			if r.hooks.Freeze == nil {
				continue
			}
			d := r.cfg.FreezeMin + time.Duration(rand.Int64N(int64(r.cfg.FreezeMax-r.cfg.FreezeMin)+1))
			if !r.hooks.Freeze(d) {
				continue
			}
			return
		}
	}
}

// removeNode takes a broker out for the hold and brings it back on its
// port under a new node id; it reports false if a broker is out already or only one is up.
func (r *runner) removeNode(stop context.Context) bool {
	r.mu.Lock()
	var ns []int32
	for n, up := range r.up {
		if up {
			ns = append(ns, n)
		}
	}
	if r.removed || len(ns) < 2 {
		r.mu.Unlock()
		return false
	}
	n := ns[rand.IntN(len(ns))]
	r.removed, r.up[n] = true, false
	r.zombies[n] = true
	r.mu.Unlock()
	end := r.hooks.Begin("node")
	if err := r.fake.RemoveNode(n); err != nil {
		r.logf("brokerfault: remove node %d: %v", n, err)
	}
	r.hold(stop, end, func() {
		// Back on its port under a new node id: kfake keeps serving the
		// connections open to a removed broker, and a client that kept one
		// across a re-add of the same id is answered NOT_LEADER_OR_FOLLOWER
		// for ever (see TestKfakeRemovedBrokerKeepsServingItsConnections).
		// The port was just closed; binding it again can fail briefly.
		var (
			id  int32
			err error
		)
		r.mu.Lock()
		r.nextID++ // never an id used before (kfake's own pick can be)
		id = r.nextID
		r.mu.Unlock()
		for range 50 {
			if _, _, err = r.fake.AddNode(id, r.ports[n]); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("brokerfault: node %d back on port %d: %w", n, r.ports[n], err))
			return
		}
		r.removed = false
		delete(r.up, n)
		r.up[id], r.ports[id] = true, r.ports[n]
		delete(r.ports, n)
	})
	return true
}

// codeName is the error code's name as Kafka spells it today (kerr keeps
// the old name of code 6).
func codeName(e *kerr.Error) string {
	if e == kerr.NotLeaderForPartition {
		return "NOT_LEADER_OR_FOLLOWER"
	}
	return e.Message
}
