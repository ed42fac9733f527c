import Foundation
import TandemCore

/// Dates as people type them, read in the device's time zone when no offset is given.
enum DateInput {
    static let dateTimeExample = "2026-11-25T21:30, 2026-11-25 21:30 or 2026-11-25T21:30:00+01:00"

    /// `YYYY-MM-DD[T ]HH:MM[:SS][Z|±HH:MM]`; without an offset, the local zone's at that time.
    static func dateTime(_ text: String, timeZone: TimeZone = .current) throws -> LocalDateTime {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let parsed = try? LocalDateTime(parsing: trimmed) { return parsed }
        let localOnly = trimmed.count == 16 ? trimmed + ":00" : trimmed
        guard localOnly.count == 19, let naive = try? LocalDateTime(parsing: localOnly + "Z") else {
            throw CLIError.invalidDate(dateTimeExample)
        }
        let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(naive.epochMillis) / 1000)) / 60
        do {
            return try LocalDateTime(date: naive.date, hour: naive.hour, minute: naive.minute, second: naive.second, offsetMinutes: offset)
        } catch {
            throw CLIError.invalidDate(dateTimeExample)
        }
    }

    static func date(_ text: String) throws -> LocalDate {
        do { return try LocalDate(parsing: text.trimmingCharacters(in: .whitespaces)) } catch { throw CLIError.invalidDate("2026-11-25") }
    }

    /// When the day after `day` begins in the local zone (ms since 1970): the end of `day`.
    static func startOfDay(after day: LocalDate, timeZone: TimeZone = .current) throws -> Int64 {
        let next = try LocalDate(daysSince1970: day.daysSince1970 + 1)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // The zone's own midnight (or its first moment, where a change of offset skips it).
        let parts = next.description.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, let midnight = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])) else {
            throw CLIError.invalidDate("2026-11-25")
        }
        return Int64((calendar.startOfDay(for: midnight).timeIntervalSince1970 * 1000).rounded())
    }

    /// Now, in the local zone.
    static func now(_ millis: UInt64, timeZone: TimeZone = .current) throws -> LocalDateTime {
        let date = Date(timeIntervalSince1970: Double(millis) / 1000)
        let offset = timeZone.secondsFromGMT(for: date) / 60
        let local = Int64(millis / 1000) + Int64(offset * 60)
        let day = try LocalDate(daysSince1970: Int(local / 86_400))
        let seconds = Int(local % 86_400)
        return try LocalDateTime(date: day, hour: seconds / 3600, minute: seconds / 60 % 60, second: seconds % 60, offsetMinutes: offset)
    }
}
