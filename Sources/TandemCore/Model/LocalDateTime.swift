/// A local date and time with its UTC offset, as a patient lived it: `2026-11-25T03:10:00+01:00`.
///
/// Stored as that canonical text (seconds always written, offset as `±HH:MM`, `Z` not used).
public struct LocalDateTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var date: LocalDate
    public var hour: Int
    public var minute: Int
    public var second: Int
    /// Minutes east of UTC, −14:00 to +14:00.
    public var offsetMinutes: Int

    static let rule = "a local date and time with offset, like 2026-11-25T21:30:00+01:00"

    public init(date: LocalDate, hour: Int, minute: Int, second: Int = 0, offsetMinutes: Int) throws(TandemCoreError) {
        guard (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              (-14 * 60...14 * 60).contains(offsetMinutes)
        else { throw .invalidValue(field: "at", rule: Self.rule) }
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.offsetMinutes = offsetMinutes
    }

    /// Parses `YYYY-MM-DDTHH:MM[:SS](Z|±HH:MM)`; a space may stand for the `T`.
    public init(parsing text: String) throws(TandemCoreError) {
        let chars = Array(text.utf8)
        guard chars.count >= 17, chars[10] == UInt8(ascii: "T") || chars[10] == UInt8(ascii: " ") else {
            throw .invalidValue(field: "at", rule: Self.rule)
        }
        let date = try LocalDate(utf8: chars[0..<10])
        var index = 11
        func number(_ digits: Int) throws(TandemCoreError) -> Int {
            guard index + digits <= chars.count else { throw .invalidValue(field: "at", rule: Self.rule) }
            var value = 0
            for c in chars[index..<index + digits] {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw .invalidValue(field: "at", rule: Self.rule) }
                value = value * 10 + Int(c - UInt8(ascii: "0"))
            }
            index += digits
            return value
        }
        func expect(_ c: Character) throws(TandemCoreError) {
            guard index < chars.count, chars[index] == c.asciiValue else { throw .invalidValue(field: "at", rule: Self.rule) }
            index += 1
        }
        let hour = try number(2)
        try expect(":")
        let minute = try number(2)
        var second = 0
        if index < chars.count, chars[index] == UInt8(ascii: ":") {
            index += 1
            second = try number(2)
        }
        guard index < chars.count else { throw .invalidValue(field: "at", rule: Self.rule) }
        var offset = 0
        if chars[index] == UInt8(ascii: "Z") {
            index += 1
        } else {
            let sign = chars[index]
            guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { throw .invalidValue(field: "at", rule: Self.rule) }
            index += 1
            let hours = try number(2)
            try expect(":")
            let minutes = try number(2)
            guard minutes < 60 else { throw .invalidValue(field: "at", rule: Self.rule) }
            offset = (hours * 60 + minutes) * (sign == UInt8(ascii: "-") ? -1 : 1)
        }
        guard index == chars.count else { throw .invalidValue(field: "at", rule: Self.rule) }
        try self.init(date: date, hour: hour, minute: minute, second: second, offsetMinutes: offset)
    }

    /// Milliseconds since 1970 UTC of this instant.
    public var epochMillis: Int64 {
        let seconds = Int64(date.daysSince1970) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return seconds * 1000
    }

    /// Written byte by byte, in one allocation: every journal entry a device merges is
    /// written back to its typed row this way. Every initializer checks the ranges, so each
    /// part has its fixed number of digits.
    public var description: String {
        let offset = abs(offsetMinutes)
        return String(unsafeUninitializedCapacity: 25) { buffer in
            date.write(into: buffer)
            buffer[10] = UInt8(ascii: "T")
            writeTwoDigits(hour, into: buffer, at: 11)
            buffer[13] = UInt8(ascii: ":")
            writeTwoDigits(minute, into: buffer, at: 14)
            buffer[16] = UInt8(ascii: ":")
            writeTwoDigits(second, into: buffer, at: 17)
            buffer[19] = offsetMinutes < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
            writeTwoDigits(offset / 60, into: buffer, at: 20)
            buffer[22] = UInt8(ascii: ":")
            writeTwoDigits(offset % 60, into: buffer, at: 23)
            return 25
        }
    }

    /// Orders by instant, then by offset so that distinct values never compare equal.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.epochMillis, lhs.offsetMinutes) < (rhs.epochMillis, rhs.offsetMinutes)
    }
}

/// A calendar date, `YYYY-MM-DD`, years 1970 to 9999.
public struct LocalDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    static let rule = "a date like 2026-11-25"

    public init(year: Int, month: Int, day: Int) throws(TandemCoreError) {
        guard (1970...9999).contains(year), (1...12).contains(month),
              (1...LocalDate.daysIn(month: month, year: year)).contains(day)
        else { throw .invalidValue(field: "date", rule: Self.rule) }
        self.year = year
        self.month = month
        self.day = day
    }

    public init(parsing text: String) throws(TandemCoreError) {
        try self.init(utf8: Array(text.utf8)[...])
    }

    /// `YYYY-MM-DD` exactly, from its bytes (a journal entry's `at` begins with one).
    init(utf8 chars: ArraySlice<UInt8>) throws(TandemCoreError) {
        guard chars.count == 10 else { throw .invalidValue(field: "date", rule: Self.rule) }
        let start = chars.startIndex
        var fields = (0, 0, 0)
        for offset in 0..<10 {
            let c = chars[start + offset]
            if offset == 4 || offset == 7 {
                guard c == UInt8(ascii: "-") else { throw .invalidValue(field: "date", rule: Self.rule) }
                continue
            }
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw .invalidValue(field: "date", rule: Self.rule) }
            let digit = Int(c - UInt8(ascii: "0"))
            switch offset {
            case 0..<4: fields.0 = fields.0 * 10 + digit
            case 5..<7: fields.1 = fields.1 * 10 + digit
            default: fields.2 = fields.2 * 10 + digit
            }
        }
        try self.init(year: fields.0, month: fields.1, day: fields.2)
    }

    /// The date `days` after 1970-01-01.
    public init(daysSince1970 days: Int) throws(TandemCoreError) {
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        try self.init(year: yoe + era * 400 + (month <= 2 ? 1 : 0), month: month, day: day)
    }

    public var daysSince1970: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Every initializer keeps the year from 1970 to 9999: always four digits.
    public var description: String {
        String(unsafeUninitializedCapacity: 10) { buffer in
            write(into: buffer)
            return 10
        }
    }

    /// Writes `YYYY-MM-DD` into the buffer's first 10 bytes (a four-digit year).
    func write(into buffer: UnsafeMutableBufferPointer<UInt8>) {
        writeTwoDigits(year / 100, into: buffer, at: 0)
        writeTwoDigits(year % 100, into: buffer, at: 2)
        buffer[4] = UInt8(ascii: "-")
        writeTwoDigits(month, into: buffer, at: 5)
        buffer[7] = UInt8(ascii: "-")
        writeTwoDigits(day, into: buffer, at: 8)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day) }
}

/// Writes a value from 0 to 99 as two ASCII digits.
@inline(__always)
func writeTwoDigits(_ value: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at index: Int) {
    buffer[index] = UInt8(ascii: "0") + UInt8(value / 10)
    buffer[index + 1] = UInt8(ascii: "0") + UInt8(value % 10)
}
