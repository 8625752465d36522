// Package churn runs the multi-process group-churn scenario of issue 9
// against the embedded broker and judges it: several member processes of
// one consumer group share a topic, handlers take 10–30 ms, and every 1.5–4 s
// a random member is SIGKILLed or stopped with SIGTERM and replaced; when
// every partition is settled all members are stopped with SIGTERM.
//
// A run passes when every message was handled at least once (no loss), the
// group's committed offsets never went down (the parent polls them every
// 10 ms), every final commit equals the log end after the clean stop, and no
// partition went StallAfter without progress while messages remained.
//
// The embedded broker (kfake at the module's pinned pseudo-version) has a
// ghost-member bug: a member whose connection closes while it waits for its
// first JoinGroup answer is never evicted, and the group goes Stable with
// the dead member owning partitions nobody fetches. Real Kafka evicts it
// after the session timeout. The harness steers around it and reports it
// apart:
// only members that have handled a message (and so completed their first
// join) are killed, a member resumed from a freeze (which rejoins under a
// new member id once its session expired) only after it handled a message
// past a session plus a rebalance timeout (ThawGuard), the final stop waits for the group to be Stable with one
// member per live process, and a group that stays Stable with more members
// than live processes longer than GhostAfter, or while a partition stalls,
// is reported as a ghost, not as an adapter failure.
//
// A second bug of the same broker holds a group in PreparingRebalance past
// its rebalance timeout (issue 25): kfake re-arms the rebalance deadline on
// every JoinGroup and member removal while the group is already preparing,
// so a member that never rejoins (a ghost, in the run that found it) is
// never evicted while other members' JoinGroups keep arriving, and members
// whose JoinGroup timed out on the client send it again and again (see
// TestKfakeRejoinsPostponeTheRebalanceDeadline in internal/kafkatest/brokerfault).
// Real Kafka fixes the deadline when the rebalance starts. A classic group
// that stays PreparingRebalance at one generation longer than StuckAfter
// ends the run, reported as stuck, not as an adapter failure (StuckWatch,
// which the soak command uses too).
//
// Member processes are a re-executed binary (a test binary or the chaos
// command): the parent passes the member's settings in the environment
// (IsMember, MemberMain) and each member appends "member partition offset"
// to a shared file as each handler finishes (adaptertest.HandledLog). The
// client-specific part of a member is a Consume function; the sub-packages
// kgmember, cfmember and naive hold the three used here, so that the adapter
// tests and the command share them.
//
// The parent reads the group's commits and members from the embedded
// broker's own state (kfake's GroupInfo) every 10 ms, not through
// OffsetFetch requests: the same data, without the request cost. The ghost
// check counts members: a member id cannot be mapped to its process (the
// clients share a client id and open several connections), so the report
// lists every member with its partitions, and the run's group.log holds
// every change of the group's state, generation and assignments.
//
// Run blocks for the whole scenario. Several Runs may run concurrently
// (each starts its own broker), but the results then reflect the load.
package churn
