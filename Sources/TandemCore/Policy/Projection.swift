/// Which fields of a channel a subscription carries (PROTOCOL.md §7).
///
/// The owner of a record always sees all of it; every other reader sees a record through
/// one projection, and only the fields `Schema` lists for it. A field the table does not
/// list (for example one added by a newer version) reaches the owner alone.
public enum Projection: String, CaseIterable, Hashable, Sendable {
    /// A journal's numbers, dates and fixed symptoms: never free text or free tags.
    case metrics
    /// A whole journal entry, free text and tags included.
    case journal
    /// A mentor note as its patient sees it once it is shared with them.
    case sharedNote = "shared-note"
    /// A consent, as its patient and its recipient see it.
    case consent
    /// Members' names and roles, as the server publishes them to devices.
    case directory
}
