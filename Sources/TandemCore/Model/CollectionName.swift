/// The collection a record belongs to, named in its create change.
///
/// Unknown names (from a newer version) are kept and merged like any other record.
public struct CollectionName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A patient's detox journal entry.
    public static let journal = CollectionName("journal")
    /// A peer mentor's session note about one patient.
    public static let note = CollectionName("note")
    /// A patient's consent that a recipient may read part of their records.
    public static let consent = CollectionName("consent")
    /// A person known to the server; server-authoritative, never written by a device.
    public static let member = CollectionName("member")
}
