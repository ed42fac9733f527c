import Foundation
import GRDB
import TandemCore

/// The server store's tables (SQLite), as named migrations.
///
/// - `center`: the epoch (a random id, replaced only by `tandem admin restore`).
/// - `member`, `device`, `credential`, `invite`: people, their devices, token hashes and
///   one-time codes. Only hashes of tokens and codes are stored; each code names the
///   token that issued it (`issuer_token`, NULL for the host's admin command).
/// - `record`: each record's number (the order records came in), id, owner (the member
///   its winning create's replica is registered to) and collection.
/// - `held`: every change the merged state holds (winners, text frontiers, creates,
///   tombstones), keyed by its record's number, with the sequence number it got when it
///   entered the state and the channel it belongs to; `covered`: each text field's
///   covered context.
/// - `replica_mark`: per replica, the highest change id accepted.
/// - `accepted`: every change id accepted, per replica, with a digest of the change's
///   bytes: what tells a replay from a new write under an old id.
/// - `enroll_failure`: failed enrollments of the last minute, by client address.
/// - `member_usage`: the bytes of the changes held in each member's channel (the quota).
/// - `channel_head`: each channel's last sequence number (`held.seq` counts one channel's
///   changes: a cursor says nothing about other channels), and the feed position of the
///   commit that set it.
/// - `sequence`: the commit feed's position, bumped by every commit that advances a
///   channel. Never shown to a device.
/// - `assignment`: the care teams: a mentor assigned to a patient (`role` 'mentor'), a
///   supervisor to a mentor ('supervisor'). An assignment alone grants no access to a
///   journal.
/// - `consent`: the terms of each consent (patient, recipient, scope, expiry, revocation),
///   kept by the push rules from the consent record's merged state in the push's own
///   transaction; the sharing policy reads it at every pull.
/// - `note`: each mentor note's author, patient, whether it is shared with the patient and
///   when it was written, kept the same way: which notes reach which patient.
/// - `journal_metric`: each live journal entry's day and numbers (never text or tags),
///   kept the same way: what the center's statistics count of consenting patients.
/// - `dashboard_password`, `sign_in_code`, `dashboard_session`: the staff dashboard's
///   sign-in (bcrypt hashes, hashes of codes and of session tokens).
enum ServerSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-initial") { db in
            try db.execute(sql: """
                CREATE TABLE center (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), epoch BLOB NOT NULL, created_at INTEGER NOT NULL);
                CREATE TABLE member (id BLOB PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE device (
                    id BLOB PRIMARY KEY, member BLOB NOT NULL, replica BLOB UNIQUE, name TEXT NOT NULL,
                    created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE credential (
                    token_hash BLOB PRIMARY KEY, member BLOB NOT NULL, device BLOB, created_at INTEGER NOT NULL,
                    revoked INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE invite (
                    code_hash BLOB PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL, member BLOB,
                    expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE enroll_failure (at INTEGER NOT NULL);
                CREATE TABLE record_owner (record BLOB PRIMARY KEY, owner BLOB NOT NULL, collection TEXT NOT NULL) WITHOUT ROWID;
                CREATE TABLE held (
                    record BLOB NOT NULL, field TEXT NOT NULL, kind INTEGER NOT NULL,
                    wall INTEGER NOT NULL, counter INTEGER NOT NULL, replica BLOB NOT NULL,
                    seq INTEGER NOT NULL, channel BLOB NOT NULL, change BLOB NOT NULL,
                    PRIMARY KEY (record, field, kind, wall, counter, replica)
                ) WITHOUT ROWID;
                CREATE INDEX held_channel_seq ON held (channel, seq);
                CREATE TABLE covered (record BLOB NOT NULL, field TEXT NOT NULL, context BLOB NOT NULL, PRIMARY KEY (record, field)) WITHOUT ROWID;
                CREATE TABLE replica_mark (replica BLOB PRIMARY KEY, wall INTEGER NOT NULL, counter INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE sequence (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), value INTEGER NOT NULL);
                INSERT INTO sequence (singleton, value) VALUES (1, 0);
                """)
        }
        migrator.registerMigration("v2-held-by-sequence") { db in
            // The commit feed reads what changed after a sequence number, across channels.
            try db.execute(sql: "CREATE INDEX held_seq ON held (seq)")
        }
        migrator.registerMigration("v3-records-numbered") { db in
            // Records get numbers in the order they come in, and `held` is keyed by number:
            // a new record's rows go at the end of the table instead of a random page (record
            // ids are random), so a commit writes far fewer pages.
            try db.execute(sql: """
                CREATE TABLE record (number INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, owner BLOB NOT NULL, collection TEXT NOT NULL);
                INSERT INTO record (id, owner, collection) SELECT record, owner, collection FROM record_owner;
                CREATE TABLE held_numbered (
                    record INTEGER NOT NULL, field TEXT NOT NULL, kind INTEGER NOT NULL,
                    wall INTEGER NOT NULL, counter INTEGER NOT NULL, replica BLOB NOT NULL,
                    seq INTEGER NOT NULL, channel BLOB NOT NULL, change BLOB NOT NULL,
                    PRIMARY KEY (record, field, kind, wall, counter, replica)
                ) WITHOUT ROWID;
                INSERT INTO held_numbered SELECT r.number, h.field, h.kind, h.wall, h.counter, h.replica, h.seq, h.channel, h.change
                    FROM held h JOIN record r ON r.id = h.record;
                """)
            // Every held change belongs to a known record; should one not, nothing is dropped:
            // the migration fails and the store stays as it was.
            let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM held") ?? 0
            let after = try Int.fetchOne(db, sql: "SELECT count(*) FROM held_numbered") ?? 0
            guard before == after else {
                throw DatabaseError(message: "\(before - after) held change(s) belong to no known record; the store was not migrated")
            }
            try db.execute(sql: """
                DROP TABLE held;
                DROP TABLE record_owner;
                ALTER TABLE held_numbered RENAME TO held;
                CREATE INDEX held_channel_seq ON held (channel, seq);
                CREATE INDEX held_seq ON held (seq, channel);
                """)
            // `held_seq` carries the channel: the commit feed's "which channels advanced
            // after n" reads the index alone, not a row per change.
        }
        migrator.registerMigration("v4-code-issuers") { db in
            // Every code names who issued it (the token that asked for it; NULL: the host's
            // admin command), so revoking a device or a member voids what it minted. Codes
            // get ids that `tandem admin invites` lists (the code itself is never stored).
            // Link codes from before this version name no issuer: they are voided (they
            // lived 15 minutes); staff invites are kept, issued by the administrator.
            try db.execute(sql: """
                ALTER TABLE invite ADD COLUMN id BLOB;
                ALTER TABLE invite ADD COLUMN kind TEXT NOT NULL DEFAULT 'invite';
                ALTER TABLE invite ADD COLUMN issuer_token BLOB;
                ALTER TABLE invite ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE invite ADD COLUMN voided INTEGER NOT NULL DEFAULT 0;
                UPDATE invite SET id = randomblob(16);
                UPDATE invite SET kind = 'link', voided = 1 WHERE member IS NOT NULL AND used = 0;
                CREATE UNIQUE INDEX invite_id ON invite (id);
                CREATE INDEX invite_issuer ON invite (issuer_token);
                CREATE INDEX invite_member ON invite (member);
                """)
        }
        migrator.registerMigration("v5-accepted-changes") { db in
            // `device.repush_epoch`: the epoch in which a device told `epochChanged` may
            // re-push (`Tandem-Repush: 1`), until its next pull (PROTOCOL.md §9.9).
            // Every change the server accepts leaves its id and a digest of its bytes here,
            // so a change at or below its replica's mark is acknowledged as a replay only
            // when it is the very change accepted under that id (PROTOCOL.md §9.3). What the
            // store holds now is what it knows it accepted; changes superseded before this
            // version are not known any more, and a replay of one is merged again: a no-op.
            try db.execute(sql: """
                ALTER TABLE device ADD COLUMN repush_epoch BLOB;
                CREATE TABLE accepted (
                    replica BLOB NOT NULL, wall INTEGER NOT NULL, counter INTEGER NOT NULL, digest BLOB NOT NULL,
                    PRIMARY KEY (replica, wall, counter)
                ) WITHOUT ROWID;
                """)
            let rows = try Row.fetchCursor(db, sql: "SELECT replica, wall, counter, change FROM held")
            let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO accepted (replica, wall, counter, digest) VALUES (?, ?, ?, ?)")
            while let row = try rows.next() {
                let change: Data = row["change"]
                try insert.execute(arguments: [row["replica"] as Data, row["wall"] as Int64, row["counter"] as Int64,
                                               Data(Secrets.changeDigest(Array(change)))])
            }
        }
        migrator.registerMigration("v6-enroll-failures-by-address") { db in
            // Failed enrollments are counted per client address (and, far higher, for the
            // whole server), so nobody locks out everyone else's valid codes.
            try db.execute(sql: """
                DROP TABLE enroll_failure;
                CREATE TABLE enroll_failure (at INTEGER NOT NULL, address TEXT NOT NULL);
                CREATE INDEX enroll_failure_address ON enroll_failure (address, at);
                CREATE INDEX enroll_failure_at ON enroll_failure (at);
                """)
        }
        migrator.registerMigration("v7-member-usage") { db in
            // The bytes of the changes held in each member's channel: what the per-member
            // storage quota counts, kept up to date by every push.
            try db.execute(sql: """
                CREATE TABLE member_usage (member BLOB PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO member_usage (member, bytes) SELECT channel, sum(length(change)) FROM held GROUP BY channel;
                """)
        }
        migrator.registerMigration("v8-channel-sequences") { db in
            // Sequence numbers count per channel (PROTOCOL.md §9.4a): a device's cursor says
            // how many changes its own channels took, never what other members did. The
            // held rows are renumbered channel by channel, in their old order; each
            // channel's head is kept with the feed position of the commit that set it, so
            // the commit feed reads "which channels advanced after n" from `channel_head`
            // alone. `t1` cursors (all channels counted together) read again from zero.
            try db.execute(sql: """
                DROP INDEX held_seq;
                WITH numbered AS (
                    SELECT record, field, kind, wall, counter, replica, row_number() OVER (PARTITION BY channel ORDER BY seq) AS n FROM held
                )
                UPDATE held SET seq = numbered.n FROM numbered
                    WHERE held.record = numbered.record AND held.field = numbered.field AND held.kind = numbered.kind
                      AND held.wall = numbered.wall AND held.counter = numbered.counter AND held.replica = numbered.replica;
                CREATE TABLE channel_head (channel BLOB PRIMARY KEY, seq INTEGER NOT NULL, feed INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO channel_head (channel, seq, feed) SELECT channel, max(seq), (SELECT value FROM sequence) FROM held GROUP BY channel;
                CREATE INDEX channel_head_feed ON channel_head (feed, seq);
                """)
        }
        migrator.registerMigration("v9-care-teams") { db in
            // Who cares for whom: `carer` (a mentor, or a supervisor) is assigned to `member`
            // (a patient, or a mentor), as `role` says.
            try db.execute(sql: """
                CREATE TABLE assignment (
                    role TEXT NOT NULL CHECK (role IN ('mentor', 'supervisor')), carer BLOB NOT NULL, member BLOB NOT NULL,
                    created_at INTEGER NOT NULL, PRIMARY KEY (role, carer, member)
                ) WITHOUT ROWID;
                CREATE INDEX assignment_member ON assignment (member, role);
                """)
        }
        migrator.registerMigration("v10-consent-index") { db in
            // The terms of each consent, kept by the push rules from the consent record's
            // merged state: what the sharing policy reads at every pull.
            try db.execute(sql: """
                CREATE TABLE consent (
                    record BLOB PRIMARY KEY, patient BLOB NOT NULL, recipient BLOB NOT NULL, scope TEXT NOT NULL,
                    expires INTEGER, revoked INTEGER
                ) WITHOUT ROWID;
                CREATE INDEX consent_recipient ON consent (recipient);
                """)
            // Consents a store took before this version, from their held changes; only those
            // their own patient wrote (before v9, anyone could write one in another's name).
            let transaction = SQLiteTransaction(db)
            for (record, owner) in try mergedRecords(of: .consent, db) {
                if let consent = Consent(record), consent.patient == owner { try transaction.setConsent(ConsentTerms(consent)) }
            }
        }
        migrator.registerMigration("v11-note-index") { db in
            // Which notes are shared with which patient, kept by the push rules.
            try db.execute(sql: """
                CREATE TABLE note (
                    record BLOB PRIMARY KEY, author BLOB NOT NULL, patient BLOB NOT NULL, shared INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX note_patient ON note (patient, shared);
                """)
            let transaction = SQLiteTransaction(db)
            for (record, author) in try mergedRecords(of: .note, db) {
                if let note = MentorNote(record) { try transaction.setNote(note.id, author: author, patient: note.patient, shared: note.isShared) }
            }
        }
        migrator.registerMigration("v12-disclosures") { db in
            // The accounting of disclosures: one hash chain per member whose records went
            // to someone else (`Accounting.swift`). Appended before a page is sent.
            try db.execute(sql: """
                CREATE TABLE disclosure (
                    subject BLOB NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, recipient BLOB NOT NULL, device BLOB,
                    scope TEXT NOT NULL, consent BLOB, records BLOB NOT NULL, previous BLOB NOT NULL, hash BLOB NOT NULL,
                    PRIMARY KEY (subject, seq)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v13-emergency-access-and-admin-log") { db in
            // Emergency access (42 CFR §2.51, `EmergencyAccess.swift`) and the center's trail
            // of administration actions (`tandem admin log`).
            try db.execute(sql: """
                CREATE TABLE emergency_access (
                    id BLOB PRIMARY KEY, patient BLOB NOT NULL, staff BLOB NOT NULL, recipient TEXT NOT NULL, facility TEXT NOT NULL,
                    reason TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at INTEGER NOT NULL, expires INTEGER NOT NULL, revoked INTEGER
                ) WITHOUT ROWID;
                CREATE INDEX emergency_access_by_staff ON emergency_access (staff);
                CREATE TABLE admin_log (
                    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, host TEXT NOT NULL, action TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v14-chain-starts") { db in
            // Where each pruned chain of disclosures starts: its last pruned entry.
            try db.execute(sql: """
                CREATE TABLE disclosure_start (
                    subject BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL, at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX disclosure_by_time ON disclosure (at);
                """)
        }
        migrator.registerMigration("v15-journal-metrics") { db in
            // The numbers of each live journal entry (day, mood, craving, sleep, symptoms as
            // bits), kept by the push rules: what the center's de-identified statistics count
            // for the patients who consent (`Outcomes`). No text, no tags. Keyed by the
            // record's number, as `held` is: a push's new entries append to it (an index by
            // patient cost the ingest benchmark a quarter of its p50, docs/benchmarks.md).
            try db.execute(sql: """
                CREATE TABLE journal_metric (
                    number INTEGER PRIMARY KEY, patient BLOB NOT NULL, day INTEGER NOT NULL, mood INTEGER, craving INTEGER,
                    slept INTEGER, symptoms INTEGER NOT NULL
                );
                """)
            let transaction = SQLiteTransaction(db)
            for (record, owner) in try mergedRecords(of: .journal, db) {
                guard let number = try Int64.fetchOne(db, sql: "SELECT number FROM record WHERE id = ?", arguments: [Data(record.id.bytes)]),
                      let metrics = JournalMetrics(record, patient: owner) else { continue }
                try transaction.setJournalMetrics(metrics, of: StoredRecord(number: number, owner: owner, collection: .journal))
            }
        }
        migrator.registerMigration("v16-dashboard-sign-in") { db in
            // The staff dashboard's sign-in: bcrypt hashes of passwords set on the host,
            // hashes of one-time sign-in codes, and sessions (hashes of their cookies' tokens).
            try db.execute(sql: """
                CREATE TABLE dashboard_password (member BLOB PRIMARY KEY, hash TEXT NOT NULL, set_at INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE sign_in_code (
                    hash BLOB PRIMARY KEY, member BLOB NOT NULL, created_at INTEGER NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE dashboard_session (
                    token BLOB PRIMARY KEY, member BLOB NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX dashboard_session_member ON dashboard_session (member);
                """)
        }
        migrator.registerMigration("v17-note-written") { db in
            // When each note was written (its create's time, ms): the center's statistics
            // count mentor contact by week from the index instead of every note's held create.
            try db.execute(sql: """
                ALTER TABLE note ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
                UPDATE note SET written = coalesce((
                    SELECT h.wall FROM record r JOIN held h ON h.record = r.number AND h.kind = \(MergeKind.create.rawValue) WHERE r.id = note.record
                ), 0);
                CREATE INDEX note_written ON note (patient, written);
                """)
        }
        migrator.registerMigration("v18-caseload-history") { db in
            // Each mentor's caseload over time (ms; `until` null while it lasts): the center's
            // statistics count a week's caseload as it stood at the week's end, so that
            // reassigning a patient today changes no week that has ended. Filled from the
            // assignments that stand now (an ended one was not kept before).
            try db.execute(sql: """
                CREATE TABLE caseload_span (
                    mentor BLOB NOT NULL, patient BLOB NOT NULL, since INTEGER NOT NULL, until INTEGER, PRIMARY KEY (mentor, patient, since)
                ) WITHOUT ROWID;
                CREATE INDEX caseload_span_patient ON caseload_span (patient);
                INSERT INTO caseload_span (mentor, patient, since) SELECT carer, member, created_at FROM assignment WHERE role = 'mentor';
                """)
        }
        migrator.registerMigration("v19-sharing-version") { db in
            // What a pull's `SharingMemo` compares: a random value, new in every transaction
            // that changes a consent, a note, an assignment or a member (PullReads.sharingVersion).
            var sql = """
                CREATE TABLE sharing_version (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), token BLOB NOT NULL);
                INSERT INTO sharing_version (singleton, token) VALUES (1, randomblob(16));

                """
            for table in SharingMemo.inputTables {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    sql += """
                        CREATE TRIGGER \(table)_\(event.lowercased())_sharing AFTER \(event) ON \(table)
                        BEGIN UPDATE sharing_version SET token = randomblob(16); END;

                        """
                }
            }
            try db.execute(sql: sql)
        }
        return migrator
    }

    /// Every record of one collection the store holds, merged from its held changes, with
    /// its owner: what a migration that adds an index of such records fills it from.
    static func mergedRecords(of collection: CollectionName, _ db: Database) throws -> [(record: RecordState, owner: MemberID)] {
        var merged: [(record: RecordState, owner: MemberID)] = []
        for row in try Row.fetchAll(db, sql: "SELECT id, number, owner FROM record WHERE collection = ?", arguments: [collection.rawValue]) {
            guard let id = try? RecordID(bytes: row["id"] as Data), let owner = try? MemberID(bytes: row["owner"] as Data) else { continue }
            var state = ReplicaState()
            for bytes in try Data.fetchAll(db, sql: "SELECT change FROM held WHERE record = ?", arguments: [row["number"] as Int64]) {
                state.apply(try Change(canonicalBytes: Array(bytes)))
            }
            if let record = state[id] { merged.append((record, owner)) }
        }
        return merged
    }
}
