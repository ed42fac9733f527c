public import TandemCore

/// Everything that can go wrong with a device store, said so a person can act on it.
///
/// No case carries health content: record ids, paths and rules only.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No store at the path: the home was never initialized.
    case notFound(path: String)
    /// `init` on a home that already holds a store.
    case alreadyExists(path: String)
    /// The file is not a Tandem store, or SQLite found it damaged.
    case unreadable(path: String)
    /// Written by a newer Tandem: opening it could lose what that version wrote.
    case newerVersion(path: String)
    /// No record has that id (or id prefix).
    case unknownRecord(String)
    /// More than one record starts with that prefix.
    case ambiguousRecord(String)
    /// The record exists but is not of the expected kind (a note where an entry was asked).
    case wrongCollection(id: String, expected: String)
    /// No open conflict on that record.
    case noConflict(id: String)
    /// The home is enrolled as another member.
    case alreadyEnrolled
    /// A value or change broke a rule of the protocol.
    case invalid(TandemCoreError)
    /// SQLite refused; `reason` has no statement arguments.
    case database(reason: String)
    /// What a server sent cannot be kept (a time beyond the store's range, say); nothing
    /// of it was stored.
    case invalidInput(reason: String)

    public var description: String {
        switch self {
        case .notFound(let path): "No Tandem store at \(path): run 'tandem init' first, or pass the right --home."
        case .alreadyExists(let path): "A Tandem store already exists at \(path)."
        case .unreadable(let path): "The store at \(path) is not a readable Tandem store (damaged, or not a Tandem file)."
        case .newerVersion(let path): "The store at \(path) was written by a newer version of Tandem; update Tandem to open it."
        case .unknownRecord(let id): "No record with id \(id)."
        case .ambiguousRecord(let id): "More than one record starts with \(id); give more of the id."
        case .wrongCollection(let id, let expected): "Record \(id) is not a \(expected)."
        case .noConflict(let id): "Record \(id) has no open text conflict."
        case .alreadyEnrolled: "This home is enrolled as another member; use another --home."
        case .invalid(let error): error.description
        case .database(let reason): "The store failed: \(reason)"
        case .invalidInput(let reason): "The server's answer was refused: \(reason); nothing of it was stored."
        }
    }
}
