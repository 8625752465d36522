package confluent

// This file holds one Run: the poll loop, the rebalance callback (assign,
// revoke) and librdkafka's log lines. The commit function is in commit.go,
// what happens to each partition's messages in flow.go.
//
// Threads. Run's goroutine polls, and librdkafka calls the rebalance
// callback inside Poll (and inside Close) on that same goroutine: every
// librdkafka call that changes a partition's fetch state (Assign,
// Unassign, IncrementalAssign, IncrementalUnassign, Pause, Resume, Seek) is
// made there, and so is every Track and Skip. The engine's workers run the
// handler; its commit loop calls the commit function (StoreOffsets, Commit,
// CommitOffsets: librdkafka allows them from any thread). A goroutine
// forwards librdkafka's log lines to the Logger.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

const pollTimeout = 100 // ms: the longest a Poll waits, and so the latency of a stop

type runner struct {
	c    *Consumer
	cfg  *config // librdkafka's own settings
	opts *engine.Options
	log  *slog.Logger
	kc   *kafka.Consumer
	eng  *engine.Engine[*kafka.Message]
	sess *engine.Session[*kafka.Message]
	logs chan kafka.LogEvent
	w    *engine.Watch // mistakes.go
	conn connDetail    // mistakes.go

	// Poll goroutine only (the rebalance callback runs inside Poll).
	parts        map[TopicPartition]*pstate // assigned partitions, for routing messages; dropped at revoke
	last         *pstate                    // the partition of the last message (a cache of parts)
	paused       int                        // partitions paused in librdkafka (applyFlow)
	cooperative  bool                       // protocol: from the configuration, then as read at each assign outside shutdown
	closing      bool                       // Run is stopping: the callback commits and releases everything it revokes
	err          error                      // set by the callback: stops Run
	stallAfter   time.Duration              // how long a partition behind its log end may go unfetched (see reseek)
	authFailures int                        // SASL authentication failures since anything was received
	pending      pendingStarts              // assigned partitions whose start is not known yet (pending.go)
	batchBytes   int                        // a batch is offered once its bytes reach this (flow.go)

	calls sync.WaitGroup // librdkafka commit calls running (see call); Close waits for them
}

func newRunner(c *Consumer, eng *engine.Engine[*kafka.Message]) (*runner, error) {
	r := &runner{
		c:     c,
		cfg:   c.cfg,
		opts:  c.opts,
		log:   c.opts.Logger,
		eng:   eng,
		logs:  make(chan kafka.LogEvent, 256),
		parts: make(map[TopicPartition]*pstate),
		// A fetch returns within FetchMaxWait; a partition with more to
		// read and nothing fetched for several of them and several ticks
		// is not being fetched.
		stallAfter: max(5*c.opts.FetchMaxWait, 3*c.opts.CommitInterval, time.Second),
		batchBytes: int(max(1, c.opts.MaxBufferedBytes/16)),
	}
	cm := cloneMap(c.cm)
	cm["go.logs.channel.enable"] = true
	cm["go.logs.channel"] = r.logs
	kc, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("%w: librdkafka: %w", ErrInvalidConfig, err)
	}
	r.kc = kc
	r.cooperative = cooperativeByConfig(cm)
	return r, nil
}

// cooperativeByConfig reports whether cm selects the COOPERATIVE rebalance
// protocol: librdkafka uses it when every assignor in
// partition.assignment.strategy is cooperative (it refuses a mix), and with
// group.protocol=consumer. It is the protocol until an assignment reads it
// from librdkafka, and the one used while closing, when asking librdkafka
// can block for ever (see assign).
func cooperativeByConfig(cm kafka.ConfigMap) bool {
	if p, _ := cm["group.protocol"].(string); strings.EqualFold(strings.TrimSpace(p), "consumer") {
		return true
	}
	s, _ := cm["partition.assignment.strategy"].(string)
	if strings.TrimSpace(s) == "" {
		return false // librdkafka's default: range,roundrobin
	}
	for a := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(a) != "cooperative-sticky" {
			return false
		}
	}
	return true
}

func (r *runner) run(ctx context.Context) error {
	logStop := make(chan struct{})
	logDone := make(chan struct{})
	go r.forwardLogs(logStop, logDone)

	r.eng.Start(ctx)
	// Lag and the stall watchdog run on the poll goroutine (flow.go), which
	// owns every librdkafka partition call.
	sess, closeTxn := r.newTxnSession() // txn.go
	r.sess = sess
	var err error
	if serr := r.kc.SubscribeTopics(r.c.topics, r.rebalance); serr != nil {
		err = fmt.Errorf("%w: subscribe: %w", ErrClient, serr)
	} else {
		err = r.poll(ctx)
	}

	// Shutdown. The session's Close drains, stores and
	// commits every partition while it is still assigned, and stops the
	// engine's commit loop; then the member gives its assignment back
	// through the rebalance callback (which finds nothing left to commit
	// and only unassigns) and leaves the group: before
	// kafka.Consumer.Close for a cooperative member (leave), inside it
	// otherwise.
	r.closing = true
	t0 := time.Now()
	r.sess.Close(context.WithoutCancel(ctx))
	closeTxn() // after the session's last commit
	r.eng.Stop()
	// librdkafka forbids destroying a handle under a live call. Every
	// commit call is synchronous (commit.go) and the session's Close has
	// waited for its commit loop and made the final commits, so none is
	// running: the wait is the guarantee, not a timeout.
	r.calls.Wait()
	t1 := time.Now()
	fenced := errors.Is(err, ErrFenced)
	if !fenced {
		r.leave()
	}
	if r.cfg.onCall != nil {
		r.cfg.onCall("close", true)
	}
	if fenced {
		r.leakFenced()
	} else if cerr := r.closeClient(); cerr != nil && err == nil {
		err = fmt.Errorf("%w: close: %w", ErrClient, cerr)
	}
	r.log.Debug("confluent: closed", "drain_commit", t1.Sub(t0), "librdkafka_close", time.Since(t1))
	close(logStop)
	<-logDone
	if herr := r.eng.Err(); herr != nil {
		return herr
	}
	return err
}

// leave unsubscribes a dynamic member of the classic protocol with
// COOPERATIVE rebalancing and serves the revokes that follow, before
// kafka.Consumer.Close, so that Close finds nothing to revoke. Inside
// Close, librdkafka 2.11.1 can hang for ever: its cooperative revoke-all
// on unsubscribe is queued even behind a revoke the application has not
// served (the eager path checks), the first unassign lets the group
// terminate, and an unassign sent for the second revoke as the group
// terminates is dropped unanswered (rd_kafka_cgrp_op_serve once
// rkcg_terminated is set; librdkafka #4884; internal/cmd/closehang
// reproduces it). Before Close the group is not terminating and every call
// is answered. Static members keep the old path (an unsubscribe would send
// the LeaveGroup a static member must not send), and so do KIP-848
// members (another path in librdkafka). It takes at most RevokeTimeout.
func (r *runner) leave() {
	if !r.cooperative || r.cfg.protocol != ClassicProtocol || r.cfg.instanceID != "" {
		return
	}
	if err := r.kc.Unsubscribe(); err != nil {
		r.log.Debug("confluent: unsubscribe before close", "error", err)
		return
	}
	// The revokes the unsubscribe causes are queued before it returns; a
	// Poll that returns nothing has served them. Messages still fetched
	// are dropped: none was handed out, the final commits are made.
	deadline := time.Now().Add(r.opts.RevokeTimeout)
	for time.Now().Before(deadline) {
		if r.kc.Poll(0) != nil {
			continue
		}
		if tps, err := r.kc.Assignment(); err != nil || len(tps) == 0 {
			return
		}
		r.kc.Poll(10)
	}
	r.log.Debug("confluent: partitions still assigned after unsubscribing before close", "after", r.opts.RevokeTimeout)
}

// closeClient is kafka.Consumer.Close, bounded: librdkafka has hangs in
// Close that no caller can undo (see leave). Past SessionTimeout + 2 x
// RequestTimeout, far longer than a Close takes (its LeaveGroup is one
// request), the call is left running with its handle and Run returns an
// error; the final commits were made before it.
func (r *runner) closeClient() error {
	done := make(chan error, 1)
	go func() { done <- r.kc.Close() }()
	bound := r.opts.SessionTimeout + 2*r.opts.RequestTimeout
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		r.log.Error("confluent: librdkafka's Close did not return; its handle is left open until the process exits",
			"after", bound, "group", r.c.group)
		return fmt.Errorf("librdkafka's Close did not return within %v", bound)
	}
}

// poll is the loop: Poll, hand each message to its partition (flow.go),
// retry the partitions waiting for room, and every CommitInterval refresh
// the log ends and look for stalled partitions. It returns nil when ctx
// ends or a handler failed (Run returns the engine's error), or the error
// that must stop Run.
func (r *runner) poll(ctx context.Context) error {
	fatal := r.eng.Fatal()
	done := ctx.Done()
	nextTick := time.Now().Add(r.opts.CommitInterval)
	for turn := 0; ; turn++ {
		// Checked every 32 messages and whenever Poll comes back without
		// one: a select per message is a measurable share of the loop.
		if turn&31 == 0 {
			select {
			case <-done:
				return nil
			case <-fatal:
				return nil
			default:
			}
			if r.err != nil {
				return r.err
			}
			r.retryPending() // pending.go
			if r.err != nil {
				return r.err
			}
			if now := time.Now(); now.After(nextTick) {
				nextTick = now.Add(r.opts.CommitInterval)
				r.tick()
			}
		}
		timeout := pollTimeout
		if r.paused > 0 {
			timeout = waitPoll
		}
		if r.batched() {
			timeout = 0 // nothing more at once: flush the batch, then wait
		}
		ev := r.kc.Poll(timeout)
		if r.cfg.onPoll != nil {
			r.cfg.onPoll(r.kc)
		}
		switch e := ev.(type) {
		case *kafka.Message:
			r.authFailures = 0
			if e.TopicPartition.Error != nil {
				r.messageError(e)
				turn = -1
				break
			}
			r.deliver(e)
		case kafka.PartitionEOF:
			r.authFailures = 0
			r.eof(kafka.TopicPartition(e))
			turn = -1
		case kafka.Error:
			if err := r.fencedBy(e); err != nil {
				return err
			}
			if fatalError(e) {
				return fmt.Errorf("%w: %w", ErrClient, e)
			}
			if authFailure(e) {
				// A broker that refuses the credentials may just close the
				// connection: librdkafka reports a transport failure and
				// retries for ever. Several in a row with nothing received
				// in between are the credentials'.
				if r.authFailures++; r.authFailures >= maxAuthFailures {
					return fmt.Errorf("%w: SASL authentication failed %d times in a row (wrong credentials or mechanism?): %w",
						ErrClient, r.authFailures, e)
				}
			}
			r.clientError(e)
			turn = -1
		default: // nil (nothing to poll now), a rebalance handled in the callback, stats
			turn = -1
		}
		if _, msg := ev.(*kafka.Message); !msg {
			r.flush()
		}
		r.eng.ApplyFlow(r.applyFlow)
	}
}

// messageError logs a per-partition fetch error. librdkafka retries them
// itself (a deleted topic is followed by a rebalance that revokes it).
func (r *runner) messageError(m *kafka.Message) {
	level := slog.LevelWarn
	var kerr kafka.Error
	if errors.As(m.TopicPartition.Error, &kerr) && transientClientError(kerr.Code()) {
		level = slog.LevelDebug
	}
	r.log.Log(context.Background(), level, "confluent: fetch error", "topic", deref(m.TopicPartition.Topic),
		"partition", m.TopicPartition.Partition, "error", m.TopicPartition.Error)
}

// clientError logs an error librdkafka recovers from by itself: at Debug
// for the routine ones (a connection closed by the broker, a broker not
// reachable yet, all of which it retries), at Warn otherwise.
func (r *runner) clientError(e kafka.Error) {
	level := slog.LevelWarn
	if r.watchError(e) || transientClientError(e.Code()) {
		level = slog.LevelDebug
	}
	r.log.Log(context.Background(), level, "confluent: librdkafka error (retried by librdkafka)", "code", e.Code(), "error", e)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// rebalance is the rebalance callback, called by librdkafka inside Poll (and
// inside Close) on the Run goroutine. It must call Assign/IncrementalAssign
// or Unassign/IncrementalUnassign itself: otherwise confluent-kafka-go does,
// and reads the rebalance protocol inside the revoke (a known hang in Close).
func (r *runner) rebalance(kc *kafka.Consumer, ev kafka.Event) error {
	r.authFailures = 0
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		r.assign(kc, e.Partitions)
	case kafka.RevokedPartitions:
		r.revoke(kc, e.Partitions)
	}
	return nil
}

func toTP(ktp kafka.TopicPartition) TopicPartition {
	return TopicPartition{Topic: deref(ktp.Topic), Partition: ktp.Partition}
}

// assign sets up newly assigned partitions: it reads their committed
// offsets and commit metadata (retrying transient errors), picks the start
// of those without a commit or whose commit is outside the log, registers
// them with the engine, and assigns them to librdkafka at exactly those
// offsets. The rebalance protocol is read here, once per assignment. When
// the reads fail for a transient reason for RequestTimeout, the partitions
// are assigned paused and their starts read again by the poll loop
// (pending.go); a permanent error (authorization, configuration, fatal)
// stops Run with ErrAssign.
//
// Not while closing: an assignment that completes as Run stops (Close
// called mid-join) is delivered by librdkafka inside kafka.Consumer.Close,
// and GetRebalanceProtocol there is a request to the group's handler that
// can wait for ever (librdkafka #4041, confluent-kafka-go #1016), and
// answers "" while the group terminates, which would turn a COOPERATIVE
// member's last unassign into an EAGER one. The protocol already known is
// used instead, and the partitions are assigned only to be given back.
func (r *runner) assign(kc *kafka.Consumer, ktps []kafka.TopicPartition) {
	if r.closing {
		r.ack(kc, ktps, true)
		return
	}
	switch kc.GetRebalanceProtocol() {
	case "COOPERATIVE":
		r.cooperative = true
	case "EAGER":
		r.cooperative = false
	}
	if r.err != nil {
		r.ack(kc, ktps, true)
		return
	}
	starts, err := r.starts(kc, ktps, time.Now().Add(r.opts.RequestTimeout))
	if err != nil {
		if permanent(err) {
			r.err = fmt.Errorf("%w: %w", ErrAssign, err)
			r.ack(kc, ktps, true)
			return
		}
		// Transient for longer than the callback may take: the poll loop
		// reads them again (pending.go); Run goes on.
		r.await(kc, ktps, err)
		tps := make([]TopicPartition, len(ktps))
		for i, ktp := range ktps {
			tps[i] = toTP(ktp)
		}
		r.w.Assigned(tps)
		return
	}
	if err := r.take(ktps, starts); err != nil {
		r.err = err
		r.ack(kc, ktps, true)
		return
	}
	at := make([]kafka.TopicPartition, len(ktps))
	bare := make([]kafka.TopicPartition, len(ktps))
	tps := make([]TopicPartition, len(ktps))
	for i, ktp := range ktps {
		bare[i] = kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition}
		at[i] = kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition, Offset: kafka.Offset(starts[i].offset)}
		tps[i] = toTP(ktp)
	}
	// librdkafka keeps a partition's pause flag across an unassign (#5591):
	// a partition paused by anyone before it moved away would come back
	// paused. Resume before assigning, so the assignment starts fetching.
	if err := kc.Resume(bare); err != nil {
		r.log.Debug("confluent: resume before assign", "error", err)
	}
	r.ack(kc, at, true)
	r.w.Assigned(tps)
	r.assigned(tps)
}

// take registers ktps with the engine at their starts, and with the poll
// goroutine; on an error it undoes what it registered and returns it
// wrapping ErrAssign.
func (r *runner) take(ktps []kafka.TopicPartition, starts []startPoint) error {
	tps := make([]TopicPartition, len(ktps))
	for i, ktp := range ktps {
		tp := toTP(ktp)
		sp := starts[i]
		part, aerr := r.sess.Assign(tp, sp.offset, sp.meta, sp.logEnd)
		if aerr != nil {
			// Undo the partitions registered so far: they are not assigned.
			r.sess.Lose(tps[:i]...)
			for _, t := range tps[:i] {
				r.forget(t)
			}
			return fmt.Errorf("%w: %w", ErrAssign, aerr)
		}
		tps[i] = tp
		bare := kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition}
		r.parts[tp] = &pstate{part: part, ktp: bare, logEnd: sp.logEnd, eofAt: -1, idleFrom: sp.offset}
	}
	return nil
}

// assigned reports partitions that start being consumed.
func (r *runner) assigned(tps []TopicPartition) {
	if r.cfg.onAssign != nil {
		proto := "EAGER"
		if r.cooperative {
			proto = "COOPERATIVE"
		}
		r.cfg.onAssign(proto, tps)
	}
}

// revoke gives up partitions: the engine stops handing out their messages
// at once (without waiting for busy workers), waits at most RevokeTimeout
// for the in-flight ones, stores and commits the commit points
// synchronously and closes them (the engine drops what it had not handed
// out); then the poll goroutine forgets them (resuming them if paused) and
// unassigns them. A lost assignment (session or poll timeout: another
// member may own the partitions already) is dropped without waiting or
// committing. At shutdown (inside kafka.Consumer.Close) the revoke is the
// final commit: the partitions are still assigned and the generation is
// still this member's, as with the Java client's onPartitionsRevoked.
func (r *runner) revoke(kc *kafka.Consumer, ktps []kafka.TopicPartition) {
	lost := kc.AssignmentLost()
	tps := make([]TopicPartition, 0, len(ktps))
	for _, ktp := range ktps {
		tps = append(tps, toTP(ktp))
	}
	if r.cfg.onRevokeStart != nil {
		r.cfg.onRevokeStart(tps, lost)
	}
	r.w.Revoked(tps, lost)
	taken := r.forgetPending(tps) // nothing handed out or committed for the others
	if lost {
		r.sess.Lose(taken...)
	} else {
		r.sess.Revoke(context.Background(), taken...)
	}
	for _, tp := range taken {
		r.forget(tp)
	}
	r.ack(kc, ktps, false)
	if r.cfg.onRevoke != nil {
		r.cfg.onRevoke(tps, lost)
	}
}

// ack completes a rebalance with librdkafka, with the protocol read at the
// last assignment.
func (r *runner) ack(kc *kafka.Consumer, ktps []kafka.TopicPartition, assign bool) {
	var err error
	switch {
	case assign && r.cooperative:
		err = kc.IncrementalAssign(ktps)
	case assign:
		err = kc.Assign(ktps)
	case r.cooperative:
		err = kc.IncrementalUnassign(ktps)
	default:
		err = kc.Unassign()
	}
	if err != nil {
		r.log.Error("confluent: completing rebalance", "assign", assign, "error", err)
		if r.err == nil && assign && !r.closing {
			r.err = fmt.Errorf("%w: %w", ErrAssign, err)
		}
	}
}

// forwardLogs sends librdkafka's log lines to the logger until stop.
// librdkafka logs routine events (connections, the group's state, the
// telemetry instance id, ...) at its notice and info levels; only its
// warnings and errors reach the Logger above Debug.
func (r *runner) forwardLogs(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case ev := <-r.logs:
			level := slog.LevelDebug
			switch {
			case r.watchLog(ev):
				// Reported by the Watch, once and then quietly.
			case ev.Level <= 3:
				level = slog.LevelError
			case ev.Level == 4:
				level = slog.LevelWarn
			}
			r.log.Log(context.Background(), level, "librdkafka: "+ev.Message, "tag", ev.Tag, "client", ev.Name)
		}
	}
}
