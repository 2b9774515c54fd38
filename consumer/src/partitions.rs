//! The partition table of a session, as plain data: which partitions of the topic exist, which this
//! replica holds, where each one is read and where a one-off run stops. The session asks it what to
//! claim, release and fetch next, and tells it what was fetched and committed; it does no I/O, so
//! the rules are tested here without a broker.

/// Fetches in a row that move nothing forward below the start watermark, after which a one-off run
/// stops waiting for a partition. A fetch moves past records, transaction markers, aborted
/// transactions and compacted gaps alike, and the start watermark is the last stable offset (see
/// `Source::latest`), so a run ends by reaching it; this guards against a broker that sends nothing
/// below the watermark it gave.
pub const EMPTY_FETCHES_BEFORE_GIVING_UP: u32 = 3;

/// Reading state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partition's number in the topic.
    pub id: i32,
    /// Whether this replica holds the partition's lock.
    pub held: bool,
    /// The next offset to fetch.
    pub offset: i64,
    /// The offset stored in the database (`None` before the first commit).
    pub stored: Option<i64>,
    /// One-off runs stop at the partition's readable end when they claimed it: its last stable
    /// offset (the high watermark, unless a transaction is open; see `fetch`).
    pub target: Option<i64>,
    /// Fetches in a row that moved nothing forward.
    pub empty_fetches: u32,
}

impl Partition {
    fn new(id: i32) -> Self {
        Self { id, held: false, offset: 0, stored: None, target: None, empty_fetches: 0 }
    }

    /// Held and, for a one-off run, not yet read to its target.
    pub fn active(&self) -> bool {
        self.held
            && match self.target {
                Some(target) => self.offset < target && self.empty_fetches < EMPTY_FETCHES_BEFORE_GIVING_UP,
                None => true,
            }
    }
}

/// What to do to reach a replica's fair share.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Held partitions to give back, between batches.
    pub release: Vec<i32>,
    /// Free partitions to try, in order, until the share is reached (another replica may hold some).
    pub candidates: Vec<i32>,
    /// How many of the candidates to take at most.
    pub wanted: usize,
}

/// Every partition of the topic that the session knows, ordered by id.
#[derive(Debug, Default)]
pub struct PartitionTable {
    /// Every partition of the topic known so far, sorted by id.
    partitions: Vec<Partition>,
}

impl PartitionTable {
    pub fn new(ids: &[i32]) -> Self {
        let mut table = Self::default();
        table.add(ids);
        table
    }

    /// Adds the partitions the topic has gained (a topic's partitions are only ever added); returns
    /// the new ids.
    pub fn add(&mut self, ids: &[i32]) -> Vec<i32> {
        let mut added = Vec::new();
        for &id in ids {
            if self.get(id).is_none() {
                self.partitions.push(Partition::new(id));
                added.push(id);
            }
        }
        self.partitions.sort_by_key(|p| p.id);
        added
    }

    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    pub fn held(&self) -> usize {
        self.partitions.iter().filter(|p| p.held).count()
    }

    pub fn get(&self, id: i32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.id == id)
    }

    /// The next offset to fetch of partition `id` (0 for one not in the table).
    pub fn offset(&self, id: i32) -> i64 {
        self.get(id).map_or(0, |p| p.offset)
    }

    fn get_mut(&mut self, id: i32) -> &mut Partition {
        let index = self.partitions.iter().position(|p| p.id == id);
        &mut self.partitions[index.unwrap_or_else(|| panic!("partition {id} is not in the table"))]
    }

    /// What to release and claim to hold `share` partitions: the highest held ids over the share
    /// go back, the lowest free ids are tried first.
    pub fn plan(&self, share: usize) -> Plan {
        let held: Vec<i32> = self.partitions.iter().filter(|p| p.held).map(|p| p.id).collect();
        if held.len() > share {
            return Plan { release: held[share..].to_vec(), ..Plan::default() };
        }
        Plan {
            release: Vec::new(),
            candidates: self.partitions.iter().filter(|p| !p.held).map(|p| p.id).collect(),
            wanted: share - held.len(),
        }
    }

    /// Starts reading a claimed partition from `offset`.
    pub fn open(&mut self, id: i32, offset: i64, stored: Option<i64>, target: Option<i64>) {
        *self.get_mut(id) = Partition { id, held: true, offset, stored, target, empty_fetches: 0 };
    }

    pub fn release(&mut self, id: i32) {
        self.get_mut(id).held = false;
    }

    /// The partitions to fetch from now.
    pub fn active(&self) -> Vec<i32> {
        self.partitions.iter().filter(|p| p.active()).map(|p| p.id).collect()
    }

    /// The next active partition after `cursor` (an index into the table), round-robin.
    pub fn next_active(&self, cursor: &mut usize) -> Option<i32> {
        let n = self.partitions.len();
        let found = (0..n).map(|k| (*cursor + k) % n).find(|&i| self.partitions[i].active())?;
        *cursor = (found + 1) % n;
        Some(self.partitions[found].id)
    }

    /// A fetch came back, having `progressed` past the partition's offset (records, or only
    /// transaction markers and aborted transactions) or not; true when a one-off run just gave up on
    /// the partition (nothing readable below its target).
    pub fn fetched(&mut self, id: i32, progressed: bool) -> bool {
        let partition = self.get_mut(id);
        partition.empty_fetches = if progressed { 0 } else { partition.empty_fetches + 1 };
        partition.target.is_some() && partition.empty_fetches == EMPTY_FETCHES_BEFORE_GIVING_UP
    }

    /// A batch was written with its offset: the partition is stored at (as the transaction that
    /// wrote it sees it, until it commits), and read from, `next_offset`. A transaction that does
    /// not commit ends the session, and with it this table.
    pub fn committed(&mut self, id: i32, next_offset: i64) {
        let partition = self.get_mut(id);
        partition.stored = Some(next_offset);
        partition.offset = next_offset;
    }

    /// Another consumer moved the stored offset: read from there.
    pub fn moved(&mut self, id: i32, stored: Option<i64>) {
        let partition = self.get_mut(id);
        partition.stored = stored;
        partition.offset = stored.unwrap_or(partition.offset);
    }

    /// The offset is no longer in the log: read from `earliest`.
    pub fn skip_to(&mut self, id: i32, earliest: i64) {
        self.get_mut(id).offset = earliest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_added_to_the_topic_join_the_table_once_and_in_order() {
        let mut table = PartitionTable::new(&[0, 1]);
        assert_eq!(table.add(&[0, 1, 3, 2]), [3, 2]);
        assert_eq!(table.add(&[0, 1, 2, 3]), Vec::<i32>::new());
        assert_eq!(table.plan(4).candidates, [0, 1, 2, 3]);
    }

    #[test]
    fn a_new_partition_is_claimed_up_to_the_share_and_read_from_where_it_is_opened() {
        let mut table = PartitionTable::new(&[0, 1]);
        table.open(0, 10, Some(10), None);
        table.open(1, 4, Some(4), None);
        table.add(&[2]);
        let plan = table.plan(3);
        assert_eq!((plan.release, plan.candidates, plan.wanted), (vec![], vec![2], 1));
        table.open(2, 0, None, None);
        assert_eq!(table.active(), [0, 1, 2]);
        assert_eq!(table.get(2).map(|p| p.offset), Some(0));
    }

    #[test]
    fn a_replica_over_its_share_releases_its_highest_partitions() {
        let mut table = PartitionTable::new(&[0, 1, 2, 3]);
        for id in 0..4 {
            table.open(id, 0, None, None);
        }
        assert_eq!(table.plan(2).release, [2, 3]);
        table.release(3);
        assert_eq!(table.held(), 3);
        assert_eq!(table.plan(4), Plan { release: vec![], candidates: vec![3], wanted: 1 });
    }

    #[test]
    fn a_one_off_run_stops_at_its_target_or_after_empty_fetches() {
        let mut table = PartitionTable::new(&[0, 1]);
        table.open(0, 5, Some(5), Some(8));
        table.open(1, 0, None, Some(3));
        table.committed(0, 8);
        assert_eq!(table.active(), [1], "partition 0 reached its target");
        assert!(!table.fetched(1, false));
        assert!(!table.fetched(1, true), "markers alone move the partition forward");
        assert!(!table.fetched(1, false));
        assert!(!table.fetched(1, false));
        assert!(table.fetched(1, false), "the third fetch in a row that moved nothing gives up");
        assert!(table.active().is_empty());
    }

    #[test]
    fn daemons_read_held_partitions_round_robin() {
        let mut table = PartitionTable::new(&[0, 1, 2]);
        table.open(0, 0, None, None);
        table.open(2, 0, None, None);
        let mut cursor = 0;
        let order: Vec<_> = (0..4).filter_map(|_| table.next_active(&mut cursor)).collect();
        assert_eq!(order, [0, 2, 0, 2]);
    }

    #[test]
    fn a_moved_offset_is_read_from_where_it_was_moved() {
        let mut table = PartitionTable::new(&[0]);
        table.open(0, 10, Some(10), None);
        table.moved(0, Some(25));
        assert_eq!(table.get(0).map(|p| (p.offset, p.stored)), Some((25, Some(25))));
        table.skip_to(0, 40);
        assert_eq!(table.get(0).map(|p| p.offset), Some(40));
    }
}
