import Foundation
import PostgresNIO
import TandemCore
import TandemServer

/// The PostgreSQL store's tables, as named migrations, and how they are applied.
///
/// Several `tandem serve` instances may start at once on one database: each applies the
/// migrations it knows and the database lacks in one transaction that first takes a
/// transaction-level advisory lock, so they run one after another, and the later ones find
/// nothing to do. PostgreSQL's DDL is transactional: a migration that fails rolls back with
/// the whole run, and the database is as it was. A database that holds migrations this
/// `tandem` does not know was migrated by a newer one and is refused.
public enum PostgresSchema {
    public struct Migration: Sendable {
        public var name: String
        /// One statement each (PostgreSQL's extended protocol runs one per query).
        public var statements: [String]
        /// What fills the new tables from what the database held, in the same transaction.
        public var fill: (@Sendable (BlockingConnection) throws -> Void)?

        public init(_ name: String, _ statements: [String], fill: (@Sendable (BlockingConnection) throws -> Void)? = nil) {
            self.name = name
            self.statements = statements
            self.fill = fill
        }
    }

    /// The key of the advisory lock migrations hold ("Tandem" in ASCII).
    static let lockKey: Int64 = 0x54_61_6E_64_65_6D

    /// Every migration, oldest first. The tables are the embedded store's (ServerSchema,
    /// at its v17), column for column, so one set of rules reads and writes both; a test
    /// compares the two. Ids are `bytea`, times and counters `bigint` (ms since 1970).
    /// Numbers the store hands out in order live in rows, as on SQLite: a channel's in
    /// `channel_head`, the commit feed's in `sequence`. Pushes take turns as on SQLite's one
    /// writer (`PostgresTransaction.beginPush`); a unique index on a channel's numbers turns
    /// any push that would still number twice into an error instead of a lost change.
    public static let migrations: [Migration] = [
        Migration("v1-center", [
            """
            CREATE TABLE center (
                singleton integer PRIMARY KEY CHECK (singleton = 1),
                epoch bytea NOT NULL,
                created_at bigint NOT NULL
            )
            """,
        ]),
        Migration("v2-store", [
            "CREATE TABLE member (id bytea PRIMARY KEY, name text NOT NULL, role text NOT NULL, created_at bigint NOT NULL)",
            """
            CREATE TABLE device (
                id bytea PRIMARY KEY, member bytea NOT NULL, replica bytea UNIQUE, name text NOT NULL,
                created_at bigint NOT NULL, revoked bigint NOT NULL DEFAULT 0, repush_epoch bytea
            )
            """,
            """
            CREATE TABLE credential (
                token_hash bytea PRIMARY KEY, member bytea NOT NULL, device bytea, created_at bigint NOT NULL,
                revoked bigint NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE invite (
                code_hash bytea PRIMARY KEY, role text NOT NULL, name text NOT NULL, member bytea,
                expires bigint NOT NULL, used bigint NOT NULL DEFAULT 0, id bytea, kind text NOT NULL DEFAULT 'invite',
                issuer_token bytea, created_at bigint NOT NULL DEFAULT 0, voided bigint NOT NULL DEFAULT 0
            )
            """,
            "CREATE UNIQUE INDEX invite_id ON invite (id)",
            "CREATE INDEX invite_issuer ON invite (issuer_token)",
            "CREATE INDEX invite_member ON invite (member)",
            "CREATE TABLE covered (record bytea NOT NULL, field text NOT NULL, context bytea NOT NULL, PRIMARY KEY (record, field))",
            "CREATE TABLE replica_mark (replica bytea PRIMARY KEY, wall bigint NOT NULL, counter bigint NOT NULL)",
            "CREATE TABLE sequence (singleton bigint PRIMARY KEY CHECK (singleton = 1), value bigint NOT NULL)",
            "INSERT INTO sequence (singleton, value) VALUES (1, 0)",
            """
            CREATE TABLE record (
                number bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id bytea NOT NULL UNIQUE, owner bytea NOT NULL,
                collection text NOT NULL
            )
            """,
            """
            CREATE TABLE held (
                record bigint NOT NULL, field text NOT NULL, kind bigint NOT NULL,
                wall bigint NOT NULL, counter bigint NOT NULL, replica bytea NOT NULL,
                seq bigint NOT NULL, channel bytea NOT NULL, change bytea NOT NULL,
                PRIMARY KEY (record, field, kind, wall, counter, replica)
            )
            """,
            "CREATE UNIQUE INDEX held_channel_seq ON held (channel, seq)",
            """
            CREATE TABLE accepted (
                replica bytea NOT NULL, wall bigint NOT NULL, counter bigint NOT NULL, digest bytea NOT NULL,
                PRIMARY KEY (replica, wall, counter)
            )
            """,
            "CREATE TABLE enroll_failure (at bigint NOT NULL, address text NOT NULL)",
            "CREATE INDEX enroll_failure_address ON enroll_failure (address, at)",
            "CREATE INDEX enroll_failure_at ON enroll_failure (at)",
            "CREATE TABLE member_usage (member bytea PRIMARY KEY, bytes bigint NOT NULL)",
            "CREATE TABLE channel_head (channel bytea PRIMARY KEY, seq bigint NOT NULL, feed bigint NOT NULL)",
            "CREATE INDEX channel_head_feed ON channel_head (feed, seq)",
            """
            CREATE TABLE assignment (
                role text NOT NULL CHECK (role IN ('mentor', 'supervisor')), carer bytea NOT NULL, member bytea NOT NULL,
                created_at bigint NOT NULL, PRIMARY KEY (role, carer, member)
            )
            """,
            "CREATE INDEX assignment_member ON assignment (member, role)",
            """
            CREATE TABLE consent (
                record bytea PRIMARY KEY, patient bytea NOT NULL, recipient bytea NOT NULL, scope text NOT NULL,
                expires bigint, revoked bigint
            )
            """,
            "CREATE INDEX consent_recipient ON consent (recipient)",
            "CREATE TABLE note (record bytea PRIMARY KEY, author bytea NOT NULL, patient bytea NOT NULL, shared bigint NOT NULL)",
            "CREATE INDEX note_patient ON note (patient, shared)",
            """
            CREATE TABLE disclosure (
                subject bytea NOT NULL, seq bigint NOT NULL, at bigint NOT NULL, recipient bytea NOT NULL, device bytea,
                scope text NOT NULL, consent bytea, records bytea NOT NULL, previous bytea NOT NULL, hash bytea NOT NULL,
                PRIMARY KEY (subject, seq)
            )
            """,
            "CREATE INDEX disclosure_by_time ON disclosure (at)",
            "CREATE TABLE disclosure_start (subject bytea PRIMARY KEY, seq bigint NOT NULL, hash bytea NOT NULL, at bigint NOT NULL)",
            """
            CREATE TABLE emergency_access (
                id bytea PRIMARY KEY, patient bytea NOT NULL, staff bytea NOT NULL, recipient text NOT NULL, facility text NOT NULL,
                reason text NOT NULL, granted_by text NOT NULL, granted_at bigint NOT NULL, expires bigint NOT NULL, revoked bigint
            )
            """,
            "CREATE INDEX emergency_access_by_staff ON emergency_access (staff)",
            """
            CREATE TABLE admin_log (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at bigint NOT NULL, actor text NOT NULL, host text NOT NULL,
                action text NOT NULL, detail text NOT NULL
            )
            """,
        ]),
        // The numbers of each live journal entry, what the center's statistics count
        // (ServerSchema's v15-journal-metrics), filled from the entries already held.
        Migration("v3-journal-metrics", [
            """
            CREATE TABLE journal_metric (
                number bigint PRIMARY KEY, patient bytea NOT NULL, day bigint NOT NULL, mood bigint, craving bigint, slept bigint,
                symptoms bigint NOT NULL
            )
            """,
        ], fill: { db in
            let transaction = PostgresTransaction(db)
            var state = ReplicaState()
            var stored: [RecordID: StoredRecord] = [:]
            for row in try db.run("""
                SELECT r.id, r.number, r.owner, h.change FROM record r JOIN held h ON h.record = r.number WHERE r.collection = 'journal'
                """) {
                let (id, number, owner, change) = try row.decode((Data, Int64, Data, Data).self)
                stored[try RecordID(bytes: id)] = StoredRecord(number: number, owner: try MemberID(bytes: owner), collection: .journal)
                state.apply(try Change(canonicalBytes: Array(change)))
            }
            for (id, record) in stored {
                if let merged = state[id], let metrics = JournalMetrics(merged, patient: record.owner) {
                    try transaction.setJournalMetrics(metrics, of: record)
                }
            }
            try db.flush()
        }),
        // The staff dashboard's sign-in (ServerSchema's v16-dashboard-sign-in).
        Migration("v4-dashboard-sign-in", [
            "CREATE TABLE dashboard_password (member bytea PRIMARY KEY, hash text NOT NULL, set_at bigint NOT NULL)",
            """
            CREATE TABLE sign_in_code (
                hash bytea PRIMARY KEY, member bytea NOT NULL, created_at bigint NOT NULL, expires bigint NOT NULL, used bigint NOT NULL
            )
            """,
            """
            CREATE TABLE dashboard_session (
                token bytea PRIMARY KEY, member bytea NOT NULL, csrf text NOT NULL, created_at bigint NOT NULL, seen_at bigint NOT NULL
            )
            """,
            "CREATE INDEX dashboard_session_member ON dashboard_session (member)",
        ]),
        // When each note was written (ServerSchema's v17-note-written).
        Migration("v5-note-written", [
            "ALTER TABLE note ADD COLUMN written bigint NOT NULL DEFAULT 0",
            """
            UPDATE note n SET written = h.wall FROM record r JOIN held h ON h.record = r.number AND h.kind = \(Int64(MergeKind.create.rawValue))
            WHERE r.id = n.record
            """,
            "CREATE INDEX note_written ON note (patient, written)",
        ]),
        // As SQLite's v18-caseload-history.
        Migration("v6-caseload-history", [
            """
            CREATE TABLE caseload_span (
                mentor bytea NOT NULL, patient bytea NOT NULL, since bigint NOT NULL, until bigint, PRIMARY KEY (mentor, patient, since)
            )
            """,
            "CREATE INDEX caseload_span_patient ON caseload_span (patient)",
            "INSERT INTO caseload_span (mentor, patient, since) SELECT carer, member, created_at FROM assignment WHERE role = 'mentor'",
        ]),
        // As SQLite's v19-sharing-version: a random value, new in every transaction that
        // changes what a sharing policy reads (`gen_random_uuid`, in core since PostgreSQL 13).
        Migration("v7-sharing-version", [
            "CREATE TABLE sharing_version (singleton bigint PRIMARY KEY CHECK (singleton = 1), token bytea NOT NULL)",
            "INSERT INTO sharing_version (singleton, token) VALUES (1, uuid_send(gen_random_uuid()))",
            """
            CREATE FUNCTION tandem_sharing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE public.sharing_version SET token = uuid_send(gen_random_uuid());
                RETURN NULL;
            END
            $$
            """,
        ] + SharingMemo.inputTables.map { table in
            "CREATE TRIGGER \(table)_sharing AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION tandem_sharing_changed()"
        }),
    ]

    /// The functions the migrations make (a restore drops them first, with every table).
    static let functions = ["tandem_sharing_changed()"]

    /// Applies what is missing; returns the names applied (empty: the database was up to date).
    /// - Throws: `NewerDatabaseError` for a database a newer `tandem` migrated;
    ///   `PostgresStoreError` when a statement fails (nothing is then changed).
    @discardableResult
    public static func migrate(_ connection: BlockingConnection, migrations: [Migration] = migrations) throws -> [String] {
        // READ COMMITTED whatever the database's default: the statements after the lock
        // must see what an instance that held it before committed.
        try connection.transaction(isolation: "READ COMMITTED") { db in
            // Another instance migrating for over two minutes is said, not waited on forever.
            try db.execute("SET LOCAL lock_timeout = '120s'")
            try db.run("SELECT pg_advisory_xact_lock(\(lockKey))")
            try db.execute("CREATE TABLE IF NOT EXISTS tandem_migration (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            let applied = Set(try db.texts("SELECT name FROM tandem_migration"))
            let known = Set(migrations.map(\.name))
            let unknown = applied.subtracting(known)
            guard unknown.isEmpty else { throw NewerDatabaseError(migrations: unknown.sorted()) }
            var done: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.statements { try db.execute(statement) }
                try migration.fill?(db)
                try db.run("INSERT INTO tandem_migration (name) VALUES (\(migration.name))")
                done.append(migration.name)
            }
            return done
        }
    }
}

/// The database was migrated by a newer `tandem` (it holds migrations this one does not
/// know): serving it could number changes below devices' cursors.
public struct NewerDatabaseError: Error, Equatable, CustomStringConvertible {
    public var migrations: [String]

    public init(migrations: [String]) { self.migrations = migrations }

    public var description: String {
        "This database was migrated by a newer tandem (\(migrations.joined(separator: ", "))); run that version or newer."
    }
}
