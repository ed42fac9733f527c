public import Foundation
import GRDB
public import TandemCore

extension ReplicaStore {
    /// Removes records and every byte of them from disk: rows are deleted with
    /// `secure_delete` on (SQLite overwrites the freed content with zeros), then the WAL is
    /// checkpointed into the database and truncated to zero bytes.
    ///
    /// A device never purges its own records or anything in its outbox; callers (the sync
    /// driver, on revocation) pass only records received from others.
    public func purge(_ ids: [RecordID]) throws {
        do {
            try queue.write { db in
                for id in ids { try Self.deleteRecord(id, db) }
            }
            try checkpointTruncate()
        } catch {
            throw map(error)
        }
    }
}
