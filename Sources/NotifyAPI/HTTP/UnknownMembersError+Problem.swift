import NotifyCore

extension UnknownMembersError {
    var problem: Problem {
        let prefix = self.codingPath.isEmpty ? "" : self.codingPath.joined(separator: ".") + "."
        return .invalidRequest(
            "unknown member(s) \(self.members.joined(separator: ", "))", fields: self.members.map { prefix + $0 })
    }
}
