public import TandemCore
import TandemProtocol

/// Decides what each caller may read: a list of grants, each a member's channel seen
/// through a projection (PROTOCOL.md §7).
///
/// Production uses `OwnRecordsPolicy` (and, with consents, a consent policy); tests
/// inject other policies through this protocol from the test target only. No flag or
/// variable of the shipped binary chooses a policy. A policy that cannot decide throws,
/// and the server answers 5xx: never an empty list.
///
/// A policy is evaluated inside the pull's own snapshot (`store`): what it reads of the
/// store (consents, assignments) is of the same moment as the token check and the pages.
public protocol SharingPolicy: Sendable {
    func grants(for principal: Principal, in store: some PullReads) throws -> [Grant]
}

/// Read access to one member's channel through one projection.
public struct Grant: Sendable, Equatable, Hashable {
    public var channel: MemberID
    /// nil: the owner's view, every field.
    public var projection: Projection?

    public init(channel: MemberID, projection: Projection?) {
        self.channel = channel
        self.projection = projection
    }

    /// The subscription key: `own`, or `m-<member hex>-<projection>`. A change of
    /// projection is a new key, so widening reads the channel again from zero and
    /// narrowing drops the old subscription (the device purges what nothing carries).
    public func key(for principal: Principal) -> String {
        if channel == principal.member && projection == nil { return SubscriptionKey.own }
        return "m-\(channel.hex)-\(projection?.rawValue ?? "owner")"
    }

    /// Whether this grant carries a field of a record in `collection`.
    public func carries(_ collection: CollectionName?, field: FieldName) -> Bool {
        guard let projection else { return true }
        guard let collection else { return false }
        return Schema.carries(projection, collection, field: field)
    }
}

/// The policy of this release: a member reads their own records, all of them.
public struct OwnRecordsPolicy: SharingPolicy {
    public init() {}
    public func grants(for principal: Principal, in store: some PullReads) throws -> [Grant] {
        [Grant(channel: principal.member, projection: nil)]
    }
}
