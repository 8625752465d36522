package engine

// This file holds the watchdog a session runs on each commit tick, by
// sampling each partition (no cost per message): the stuck warning (a
// message holds the commit point).

import "time"

// watch samples p at time now (a tick) and logs the start and the end of
// a stuck episode, each once. Under tickMu.
func (s *Session[M]) watch(p *Part, now time.Time) {
	ws := p.wm.Stats() // also samples PartitionStats.Stuck
	log := s.e.log

	// Stuck: the commit point has not moved for StuckThreshold while
	// messages are pending. The oldest pending offset is the commit point.
	if ws.Pending == 0 || p.stuckSince.IsZero() || ws.Committable != p.stuckPoint {
		if p.stuckLogged {
			p.stuckLogged = false
			log.Info("inorder: partition commit point moving again", "topic", p.TP.Topic, "partition", p.TP.Partition,
				"commit_point", ws.Committable, "was_stuck_at", p.stuckPoint, "stuck_for", now.Sub(p.stuckSince))
		}
		p.stuckPoint, p.stuckSince = ws.Committable, time.Time{}
		if ws.Pending > 0 {
			p.stuckSince = now
		}
	} else if d := now.Sub(p.stuckSince); d >= s.e.cfg.StuckThreshold && !p.stuckLogged {
		p.stuckLogged = true
		log.Warn("inorder: partition stuck: the oldest pending message holds the commit point",
			"topic", p.TP.Topic, "partition", p.TP.Partition, "offset", ws.Committable,
			"pending", ws.Pending, "stuck_for", d)
	}
}
