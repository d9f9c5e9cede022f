use super::*;

fn peer(b: u8) -> PeerId {
    PeerId::from_bytes(&[b; 16])
}

fn kp(b: u8) -> Payload {
    Payload::from_bytes(&[b; 40])
}

/// A conference whose group `creator` made, with everyone in `room` present.
fn conference(room: &[u8], now: Instant) -> Conference {
    let mut c = Conference::new();
    for &p in room {
        c.joined(peer(p));
    }
    let created = c
        .key_package(&peer(room[0]), kp(room[0]), now)
        .expect("accepted");
    assert_eq!(created, [Delivery::CreateGroup { to: peer(room[0]) }]);
    c
}

fn task(to: u8, epoch: u64, add: &[u8], remove: &[u8]) -> Delivery {
    Delivery::Task {
        to: peer(to),
        epoch,
        add: add.iter().map(|&p| (peer(p), kp(p))).collect(),
        remove: remove.iter().map(|&p| peer(p)).collect(),
    }
}

fn commit(to: &[u8], from: u8, epoch: u64) -> Delivery {
    Delivery::Commit {
        to: to.iter().map(|&p| peer(p)).collect(),
        from: peer(from),
        epoch,
    }
}

fn welcome(to: &[u8], from: u8, epoch: u64) -> Delivery {
    Delivery::Welcome {
        to: to.iter().map(|&p| peer(p)).collect(),
        from: peer(from),
        epoch,
    }
}

#[test]
fn joiners_are_added_by_the_oldest_member_one_commit_at_a_time_and_everyone_gets_each_commit() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3, 4], now);
    // Bea publishes: Ada (the oldest member) is named to add her.
    assert_eq!(
        c.key_package(&peer(2), kp(2), now),
        Ok(vec![task(1, 0, &[2], &[])])
    );
    // Cy and Dee publish while that commit is made: they wait for the next.
    assert_eq!(c.key_package(&peer(3), kp(3), now), Ok(vec![]));
    assert_eq!(c.key_package(&peer(4), kp(4), now), Ok(vec![]));
    // Ada's commit goes to every member (her too), the Welcome to Bea; the next task opens.
    assert_eq!(
        c.commit(&peer(1), 0, true, &[], now),
        Ok(vec![
            commit(&[1], 1, 0),
            welcome(&[2], 1, 1),
            task(1, 1, &[3, 4], &[])
        ])
    );
    assert_eq!(
        c.commit(&peer(1), 1, true, &[], now),
        Ok(vec![commit(&[1, 2], 1, 1), welcome(&[3, 4], 1, 2)])
    );
    assert_eq!(c.poll_timeout(), None);
    // Application messages go to every other member, in this epoch or the one before.
    assert_eq!(
        c.group_message(&peer(3), 2),
        Ok(vec![peer(1), peer(2), peer(4)])
    );
    assert_eq!(c.group_message(&peer(3), 1).map(|to| to.len()), Ok(3));
    assert_eq!(c.group_message(&peer(3), 0), Err(Refusal::StaleEpoch));
}

#[test]
fn a_leaver_is_removed_by_a_commit_and_gets_nothing_after() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3], now);
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    c.commit(&peer(1), 0, true, &[], now).expect("accepted");
    c.key_package(&peer(3), kp(3), now).expect("accepted");
    c.commit(&peer(1), 1, true, &[], now).expect("accepted");
    // Ada leaves: Bea, now the oldest, removes her.
    assert_eq!(c.left(&peer(1), now), vec![task(2, 2, &[], &[1])]);
    assert_eq!(c.group_message(&peer(1), 2), Err(Refusal::NotMember));
    assert_eq!(
        c.commit(&peer(2), 2, false, &[], now),
        Ok(vec![commit(&[2, 3], 2, 2)])
    );
    assert_eq!(c.group_message(&peer(2), 3), Ok(vec![peer(3)]));
}

#[test]
fn the_first_commit_for_an_epoch_wins_and_a_later_one_is_stale() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3], now);
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    c.commit(&peer(1), 0, true, &[], now).expect("accepted");
    c.key_package(&peer(3), kp(3), now).expect("accepted");
    // Ada stays silent past her time: Bea is named too.
    let later = now + TASK_TIMEOUT;
    assert_eq!(c.poll_timeout(), Some(later));
    assert_eq!(c.handle_timeout(later - Duration::from_millis(1)), vec![]);
    assert_eq!(c.handle_timeout(later), vec![task(2, 1, &[3], &[])]);
    // Bea's commit comes first; Ada's, for the same epoch, is refused.
    assert_eq!(
        c.commit(&peer(2), 1, true, &[], later),
        Ok(vec![commit(&[1, 2], 2, 1), welcome(&[3], 2, 2)])
    );
    assert_eq!(
        c.commit(&peer(1), 1, true, &[], later),
        Err(Refusal::StaleEpoch)
    );
    // A member who was never named cannot commit, nor can anyone with no task open.
    c.joined(peer(4));
    c.key_package(&peer(4), kp(4), later).expect("accepted");
    assert_eq!(
        c.commit(&peer(3), 2, true, &[], later),
        Err(Refusal::NotCommitter)
    );
    // Ada let a task time out: Bea, the next oldest, is named before her now.
    assert_eq!(
        c.commit(&peer(1), 2, true, &[], later),
        Err(Refusal::NotCommitter)
    );
    c.commit(&peer(2), 2, true, &[], later)
        .expect("Bea was named");
}

#[test]
fn with_no_task_open_any_member_may_commit_an_update_and_the_first_wins() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3], now);
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    c.commit(&peer(1), 0, true, &[], now).expect("accepted");
    // Bea updates her keys: everyone gets it; Ada's update for the same epoch is stale.
    assert_eq!(
        c.commit(&peer(2), 1, false, &[], now),
        Ok(vec![commit(&[1, 2], 2, 1)])
    );
    assert_eq!(
        c.commit(&peer(1), 1, false, &[], now),
        Err(Refusal::StaleEpoch)
    );
    // An update adds no one: a Welcome or a refusal in it is refused.
    assert_eq!(
        c.commit(&peer(1), 2, true, &[], now),
        Err(Refusal::BadMessage)
    );
    assert_eq!(
        c.commit(&peer(1), 2, false, &[peer(3)], now),
        Err(Refusal::BadMessage)
    );
    // Someone not in the group cannot.
    assert_eq!(
        c.commit(&peer(3), 2, false, &[], now),
        Err(Refusal::NotMember)
    );
    // With a task open, only the member named for it may commit.
    assert_eq!(
        c.key_package(&peer(3), kp(3), now),
        Ok(vec![task(1, 2, &[3], &[])])
    );
    assert_eq!(
        c.commit(&peer(2), 2, false, &[], now),
        Err(Refusal::NotCommitter)
    );
}

#[test]
fn a_named_committer_who_leaves_hands_the_task_on_at_once() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3], now);
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    c.commit(&peer(1), 0, true, &[], now).expect("accepted");
    assert_eq!(
        c.key_package(&peer(3), kp(3), now),
        Ok(vec![task(1, 1, &[3], &[])])
    );
    // Ada leaves mid-task: Bea gets the same task at once, Ada's removal waits for the next.
    assert_eq!(c.left(&peer(1), now), vec![task(2, 1, &[3], &[])]);
    assert_eq!(
        c.commit(&peer(2), 1, true, &[], now),
        Ok(vec![
            commit(&[2], 2, 1),
            welcome(&[3], 2, 2),
            task(2, 2, &[], &[1])
        ])
    );
}

#[test]
fn a_refused_joiner_is_turned_away_and_a_commit_that_lies_about_its_joiners_is_refused() {
    let now = Instant::now();
    let mut c = conference(&[1, 2, 3], now);
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    c.key_package(&peer(3), kp(3), now).expect("accepted");
    // Only Bea is in this task: Cy cannot be refused in it, and a Welcome is due.
    assert_eq!(
        c.commit(&peer(1), 0, true, &[peer(3)], now),
        Err(Refusal::BadMessage)
    );
    assert_eq!(
        c.commit(&peer(1), 0, false, &[], now),
        Err(Refusal::BadMessage)
    );
    assert_eq!(
        c.commit(&peer(1), 0, true, &[peer(2)], now),
        Err(Refusal::BadMessage)
    );
    assert_eq!(
        c.commit(&peer(2), 0, true, &[], now),
        Err(Refusal::NotMember)
    );
    // Ada refuses Bea's KeyPackage: no Welcome, Bea is turned away, Cy's task follows.
    assert_eq!(
        c.commit(&peer(1), 0, false, &[peer(2)], now),
        Ok(vec![
            commit(&[1], 1, 0),
            Delivery::Refused { to: peer(2) },
            task(1, 1, &[3], &[])
        ])
    );
    // A second KeyPackage, or one from a member, is refused.
    assert_eq!(
        c.key_package(&peer(3), kp(3), now),
        Err(Refusal::BadMessage)
    );
    assert_eq!(
        c.key_package(&peer(1), kp(1), now),
        Err(Refusal::BadMessage)
    );
}

#[test]
fn a_commit_adds_at_most_eight_and_the_rest_follow() {
    let now = Instant::now();
    let room: Vec<u8> = (1..=11).collect();
    let mut c = conference(&room, now);
    // Bea alone in the first task (it opened at once); then eight; then the last one.
    c.key_package(&peer(2), kp(2), now).expect("accepted");
    for p in 3..=11 {
        c.key_package(&peer(p), kp(p), now).expect("accepted");
    }
    let out = c.commit(&peer(1), 0, true, &[], now).expect("accepted");
    assert_eq!(
        out.last(),
        Some(&task(1, 1, &[3, 4, 5, 6, 7, 8, 9, 10], &[]))
    );
    let out = c.commit(&peer(1), 1, true, &[], now).expect("accepted");
    assert_eq!(out.last(), Some(&task(1, 2, &[11], &[])));
}

#[test]
fn when_every_member_is_gone_the_next_joiner_starts_a_new_group() {
    let now = Instant::now();
    let mut c = conference(&[1, 2], now);
    assert_eq!(
        c.key_package(&peer(2), kp(2), now),
        Ok(vec![task(1, 0, &[2], &[])])
    );
    // Ada, the only member, leaves before adding Bea: Bea creates a group of her own.
    assert_eq!(
        c.left(&peer(1), now),
        vec![Delivery::CreateGroup { to: peer(2) }]
    );
    assert_eq!(c.group_message(&peer(2), 0), Ok(vec![]));
    assert_eq!(c.poll_timeout(), None);
    // Ada's late commit for the old group is not a member's.
    assert_eq!(
        c.commit(&peer(1), 0, true, &[], now),
        Err(Refusal::NotMember)
    );
}
