/// JSON bodies of the HTTP API (Protocol/openapi.yaml, PROTOCOL.md §9).

/// `POST /v1/enroll` request.
public struct EnrollRequest: Codable, Sendable {
    public var code: String
    public var replica: String
    public var deviceName: String
    /// The role the device's home was made for; a code for another role is refused
    /// without being used up.
    public var role: String?
    /// The member the home is already bound to, if any; a code for another member is
    /// refused without being used up.
    public var member: String?

    public init(code: String, replica: String, deviceName: String, role: String? = nil, member: String? = nil) {
        self.code = code
        self.replica = replica
        self.deviceName = deviceName
        self.role = role
        self.member = member
    }
}

/// `POST /v1/enroll` answer: the device's token, shown once.
public struct EnrollResponse: Codable, Sendable {
    public var token: String
    public var member: String
    public var name: String
    public var role: String
    public var epoch: String
    public var serverTime: UInt64
}

/// `POST /v1/link` answer.
public struct LinkResponse: Codable, Sendable {
    public var code: String
    public var expires: UInt64
    public var serverTime: UInt64
}

/// `POST /v1/push` answer.
public struct PushResponse: Codable, Sendable {
    public var accepted: Int
    public var replayed: Int
    /// Cursors this push moves: a device whose cursor for `key` is `from` may set it to
    /// `to` (what lies between is what it just pushed), so it does not pull its own
    /// changes back. Absent when the push added nothing to the device's own channel.
    public var advanced: [Advance]?
    public var serverTime: UInt64

    public struct Advance: Codable, Sendable, Equatable {
        public var key: String
        public var from: String
        public var to: String
    }
}

/// `POST /v1/pull` request: a cursor per subscription the device holds (none at first).
public struct PullRequest: Codable, Sendable {
    public var cursors: [String: String]
    public var limit: Int?
    public init(cursors: [String: String], limit: Int? = nil) {
        self.cursors = cursors
        self.limit = limit
    }
}

/// One active subscription: a channel seen through a projection.
public struct Subscription: Codable, Sendable, Equatable {
    public var key: String
    public var channel: String
    public var projection: String
}

/// `POST /v1/pull` answer.
public struct PullResponse: Codable, Sendable {
    public var epoch: String
    /// True when a cursor the device sent was from another epoch (a restore): the device
    /// forgets its cursors and reads again from zero.
    public var epochChanged: Bool
    /// Every subscription the device holds now; data that none of them carries is purged.
    public var subscriptions: [Subscription]
    /// One page per subscription.
    public var pages: [PullPage]
    public var serverTime: UInt64

    /// A page of one subscription.
    public struct PullPage: Codable, Sendable {
        public var key: String
        /// Base64 of a raw-deflated batch (PROTOCOL.md §4): current state since the cursor.
        public var changes: String
        public var cursor: String
        public var more: Bool
    }

    /// Whether any subscription has another page.
    public var more: Bool { pages.contains(where: \.more) }
}

/// Every error answer.
public struct ErrorResponse: Codable, Sendable {
    public var error: String
    public var message: String
    public var refused: [ServerError.Refusal]?
    public var serverTime: UInt64
}

/// `GET /v1/devices` answer: the calling member's devices.
public struct DevicesResponse: Codable, Sendable {
    public var devices: [DeviceInfo]
    public var serverTime: UInt64
}
