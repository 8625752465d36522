package churn

// This file holds the scenario's settings and their defaults.

import (
	"context"
	"fmt"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Config describes one run. The zero value of a duration or count takes the
// default named on the field (see DefaultConfig); Command and Dir have none.
type Config struct {
	// Command is the argv of a member process: a binary that calls
	// IsMember and MemberMain first thing (a test binary with
	// "-test.run=^$", or a command that re-executes itself). Required.
	Command []string
	// Dir receives the handled file and one log file per member. It must
	// exist. Required.
	Dir string

	Adapter string // a label for the Result
	// Protocol is "eager" (default) or "cooperative" (the classic group
	// protocol), or "consumer" (KIP-848: the broker gets SessionTimeout and
	// HeartbeatInterval as its consumer-group settings), passed to members.
	Protocol string
	// Keys, if positive, gives the messages Keys distinct keys (round-robin
	// over the partitions) and has the members handle them ByKey (adapters;
	// others ignore it). 0 (default): keyless messages, Unordered.
	Keys int

	Members    int   // live members at any time. Default 3.
	Brokers    int   // brokers of the embedded cluster. Default 1.
	Partitions int32 // Default 4.
	Messages   int   // produced before the members start. Default 40000.
	Kills      int   // members killed (SIGKILL) or stopped (SIGTERM) and replaced. Default 4.
	// KillOnly makes every one of the Kills a SIGKILL. Default false: each
	// is a SIGKILL or a SIGTERM, at random.
	KillOnly bool
	// KillAtProgress makes kill i (1..Kills) also wait until i/(Kills+1) of
	// the messages were handled, so that the kills spread over the run
	// whether the consumer is fast or slow. Default false: the kills
	// follow the clock alone.
	KillAtProgress bool
	// KillMinAge: only a member that has been handling messages for this
	// long is killed (one that has not handled any never is). Default 0.
	KillMinAge time.Duration
	// KillMin and KillMax bound the random pause before each kill. Default
	// 1.5s and 4s.
	KillMin, KillMax time.Duration
	// HandlerMin and HandlerMax bound each handler's sleep. Default 10ms
	// and 30ms.
	HandlerMin, HandlerMax time.Duration
	// SlowFraction of the handler calls (chosen at random) sleep Slow
	// instead. Default 0: none.
	SlowFraction float64
	Slow         time.Duration
	Concurrency  int // handler goroutines per member. Default 16.

	// Defaults makes members leave their client's timeouts at the client's
	// defaults. SessionTimeout must still be the session timeout in effect:
	// the thresholds below are derived from it.
	Defaults bool
	// The group timeouts passed to members unless Defaults. Defaults 3s,
	// 6s, 4s, 1s.
	SessionTimeout, RebalanceTimeout, RevokeTimeout, HeartbeatInterval time.Duration

	// StallAfter: a partition whose commit is below its log end and that
	// sees neither a new commit nor a newly handled message for this long
	// is a stall, and ends the run. Default max(30s, SessionTimeout+30s).
	StallAfter time.Duration
	// GhostAfter: a group that stays Stable with more members than live
	// member processes for this long holds a ghost (the broker bug), which
	// ends the run. Default SessionTimeout+10s.
	GhostAfter time.Duration
	// StuckAfter: a classic group that stays PreparingRebalance at one
	// generation for this long is stuck (the broker bug that re-arms the
	// rebalance deadline on every JoinGroup, see the package doc), which
	// ends the run. Kafka ends a rebalance within the rebalance timeout.
	// Default RebalanceTimeout+SessionTimeout+10s, or 6m with Defaults (the
	// clients' default rebalance timeouts are up to 5m).
	StuckAfter time.Duration
	// SettleAfter: a partition whose every message was handled and that saw
	// no progress for this long is done even if its commit is short.
	// Default SessionTimeout+RebalanceTimeout+3s: a killed member's
	// partitions wait that long for their new owner, who handles again what
	// the killed one handled and did not commit (with 3s, the clean stop
	// came 28-130 ms after such an owner's assignment, and the run reported
	// a short final commit that was not one).
	SettleAfter time.Duration
	// StopTimeout: a member not exited this long after SIGTERM is
	// SIGKILLed and reported as hung. Default RevokeTimeout+20s (60s with
	// Defaults).
	StopTimeout time.Duration
	// Timeout bounds the whole run. Default 10 minutes.
	Timeout time.Duration

	// Chaos, if set, runs in its own goroutine from the first members'
	// start until every partition is settled (then its context ends; the
	// clean stop waits for it to return, so it must undo its faults and
	// return promptly). It breaks the broker through env.Cluster(),
	// records each fault with env.Begin, and may freeze members with
	// env.Freeze. With Chaos set, a partition's idle time (StallAfter) counts
	// from the later of its last progress and the last event's start or end.
	Chaos func(ctx context.Context, env *ChaosEnv)
	// Setup, if set, is called with the run's cluster after the messages
	// are produced and before the members start (to create the topics a
	// scenario's members write to). An error ends the run.
	Setup func(ctx context.Context, c *kafkatest.Cluster) error
	// Check, if set, is called with the run's cluster and its result after
	// the members stopped (unless the run was aborted), to add a
	// scenario's own findings to res.Extra. An error ends the run.
	Check func(ctx context.Context, c *kafkatest.Cluster, res *Result) error

	// Logf, if set, receives a line per event (member started, killed,
	// stopped; stall; ghost).
	Logf func(format string, args ...any)
}

// DefaultConfig returns the scenario with no Command or Dir: 3
// members, 4 partitions, 40,000 messages, handlers of 10–30 ms, 4 kills
// 1.5–4 s apart, rebalance timeout 6 s.
func DefaultConfig() Config {
	c := Config{}
	c.fill()
	return c
}

func (c *Config) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if c.Protocol == "" {
		c.Protocol = "eager"
	}
	defInt(&c.Members, 3)
	defInt(&c.Brokers, 1)
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	defInt(&c.Messages, 40000)
	defInt(&c.Kills, 4)
	defInt(&c.Concurrency, 16)
	def(&c.KillMin, 1500*time.Millisecond)
	def(&c.KillMax, 4*time.Second)
	def(&c.HandlerMin, 10*time.Millisecond)
	def(&c.HandlerMax, 30*time.Millisecond)
	def(&c.SessionTimeout, 3*time.Second)
	def(&c.RebalanceTimeout, 6*time.Second)
	def(&c.RevokeTimeout, 4*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.StallAfter, max(30*time.Second, c.SessionTimeout+30*time.Second))
	def(&c.GhostAfter, c.SessionTimeout+10*time.Second)
	if c.Defaults {
		def(&c.StuckAfter, 6*time.Minute)
	}
	def(&c.StuckAfter, c.RebalanceTimeout+c.SessionTimeout+10*time.Second)
	def(&c.SettleAfter, c.SessionTimeout+c.RebalanceTimeout+3*time.Second)
	if c.Defaults {
		def(&c.StopTimeout, 60*time.Second)
	}
	def(&c.StopTimeout, c.RevokeTimeout+20*time.Second)
	def(&c.Timeout, 10*time.Minute)
}

func (c *Config) validate() error {
	switch {
	case len(c.Command) == 0:
		return fmt.Errorf("%w: Command is empty", ErrBadConfig)
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is empty", ErrBadConfig)
	case c.Protocol != "eager" && c.Protocol != "cooperative" && c.Protocol != "consumer":
		return fmt.Errorf("%w: Protocol %q (want eager, cooperative or consumer)", ErrBadConfig, c.Protocol)
	case c.Keys < 0:
		return fmt.Errorf("%w: Keys %d (want >= 0)", ErrBadConfig, c.Keys)
	case c.Brokers < 1:
		return fmt.Errorf("%w: Brokers %d (want >= 1)", ErrBadConfig, c.Brokers)
	case c.Members < 1 || c.Partitions < 1 || c.Messages < 1 || c.Kills < 0 || c.Concurrency < 1:
		return fmt.Errorf("%w: Members %d, Partitions %d, Messages %d, Kills %d, Concurrency %d (want >= 1, Kills >= 0)",
			ErrBadConfig, c.Members, c.Partitions, c.Messages, c.Kills, c.Concurrency)
	case c.KillMin < 0 || c.KillMax < c.KillMin || c.KillMinAge < 0:
		return fmt.Errorf("%w: KillMin %v, KillMax %v, KillMinAge %v", ErrBadConfig, c.KillMin, c.KillMax, c.KillMinAge)
	case c.HandlerMin < 0 || c.HandlerMax < c.HandlerMin:
		return fmt.Errorf("%w: HandlerMin %v, HandlerMax %v", ErrBadConfig, c.HandlerMin, c.HandlerMax)
	case c.SlowFraction < 0 || c.SlowFraction > 1 || c.Slow < 0:
		return fmt.Errorf("%w: SlowFraction %v, Slow %v (want a fraction in [0, 1], Slow >= 0)",
			ErrBadConfig, c.SlowFraction, c.Slow)
	}
	return nil
}

func (c *Config) spec(index int, brokers []string, group, topic, out string) MemberSpec {
	return MemberSpec{
		Index: index, Adapter: c.Adapter, Brokers: brokers, Group: group, Topic: topic, Out: out,
		Protocol: c.Protocol, ByKey: c.Keys > 0, Defaults: c.Defaults,
		SessionTimeout: c.SessionTimeout, RebalanceTimeout: c.RebalanceTimeout,
		RevokeTimeout: c.RevokeTimeout, HeartbeatInterval: c.HeartbeatInterval,
		Concurrency: c.Concurrency, HandlerMin: c.HandlerMin, HandlerMax: c.HandlerMax,
		SlowFraction: c.SlowFraction, Slow: c.Slow,
	}
}
