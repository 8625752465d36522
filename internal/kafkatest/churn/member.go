package churn

// This file is the member process's side: the settings the parent passes in
// the environment, and the main that runs a client's Consume function with
// the scenario's handler.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// envMember holds the JSON MemberSpec of a member process; its presence
// makes IsMember true.
const envMember = "INORDER_CHURN_MEMBER"

// MemberSpec is what a member process needs to know: where to consume, how
// long its handler takes, which client settings to use. The parent builds it
// from a Config; Consume functions read it.
type MemberSpec struct {
	Index    int      // the member's number in its run, 0, 1, ...
	Adapter  string   // Config.Adapter, for members that serve several
	Brokers  []string // bootstrap addresses
	Group    string
	Topic    string
	Out      string // the shared handled file
	Protocol string // "eager", "cooperative" or "consumer" (clients that support them)
	ByKey    bool   // handle the messages ByKey (adapters; Config.Keys)
	// InstanceID makes the member static (adapters that have
	// WithInstanceID; RunRolling); "" for a dynamic member.
	InstanceID string
	// Defaults leaves the client's timeouts at their defaults; otherwise
	// the four timeouts below are set.
	Defaults          bool
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	RevokeTimeout     time.Duration // adapters only
	HeartbeatInterval time.Duration
	Concurrency       int           // handler goroutines
	HandlerMin        time.Duration // each handler sleeps uniformly in [HandlerMin, HandlerMax]
	HandlerMax        time.Duration
	SlowFraction      float64 // this fraction of the calls (at random) sleeps Slow instead
	Slow              time.Duration
}

// Handle is the scenario's handler as a Consume function sees it: it
// sleeps HandlerMin..HandlerMax (or Slow, for SlowFraction of the calls) and then records that the member handled
// offset o of partition p. It is safe for concurrent use; an error means the
// record could not be written (the member should stop).
type Handle func(ctx context.Context, p int32, o int64) error

// Consume runs one client as a group member until ctx ends (the member got
// SIGTERM) and returns nil after a clean stop. It calls handle for every
// message, from Concurrency goroutines. log writes to the member's log file.
type Consume func(ctx context.Context, s MemberSpec, handle Handle, log *slog.Logger) error

// IsMember reports whether this process was started by Run as a member
// process. Call it first thing in main or TestMain (or a test file's init)
// and, if true, exit with MemberMain's code.
func IsMember() bool { return os.Getenv(envMember) != "" }

// MemberMain runs this member process with consume until SIGTERM or SIGINT
// and returns the process exit code: 0 after a clean stop, 1 if consume
// failed, 2 for a bad environment. Errors go to stderr (the member's log
// file). It blocks for the member's life.
func MemberMain(consume Consume) int {
	var s MemberSpec
	if err := json.Unmarshal([]byte(os.Getenv(envMember)), &s); err != nil {
		fmt.Fprintf(os.Stderr, "%v: %s: %v\n", ErrBadConfig, envMember, err)
		return 2
	}
	hl, err := adaptertest.OpenHandledLog(s.Out, strconv.Itoa(s.Index))
	if err != nil {
		fmt.Fprintln(os.Stderr, "churn member:", err)
		return 2
	}
	defer hl.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	span := int64(s.HandlerMax - s.HandlerMin)
	handle := func(_ context.Context, p int32, o int64) error {
		d := s.HandlerMin
		if span > 0 {
			d += time.Duration(rand.Int64N(span + 1))
		}
		if s.SlowFraction > 0 && rand.Float64() < s.SlowFraction {
			d = s.Slow
		}
		// The handler does not watch ctx: work in flight finishes, as most
		// real handlers do.
		time.Sleep(d)
		return hl.Write(p, o)
	}
	log.Info("churn member start", "index", s.Index, "pid", os.Getpid())
	if err := consume(ctx, s, handle, log); err != nil {
		log.Error("churn member: consume failed", "err", err)
		return 1
	}
	log.Info("churn member stopped cleanly")
	return 0
}

// MemberEnv returns the environment entry ("NAME=value") that makes a
// process the member s (IsMember true, MemberMain reads s from it), for
// commands that start members without Run (the soak).
func MemberEnv(s MemberSpec) (string, error) { return memberEnv(s) }

// memberEnv returns the environment entry that makes a process the member s.
func memberEnv(s MemberSpec) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return envMember + "=" + string(b), nil
}
