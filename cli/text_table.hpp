#pragma once
// A plain-text table with aligned columns, for terminal output:
//
//   TextTable table({"SERVICE TYPE", "QUEUED"}, {TextTable::left, TextTable::right});
//   table.add_row({"users", "12"});
//   table.print(std::cout, "  ");  // every line prefixed with two spaces

#include <iosfwd>
#include <string>
#include <vector>

namespace exobus::cli {

class TextTable {
 public:
  enum Align { left, right };

  TextTable(std::vector<std::string> headers, std::vector<Align> aligns);
  // A row with fewer cells than headers is padded with empty cells.
  void add_row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Columns are separated by two spaces; trailing blanks are trimmed.
  void print(std::ostream& out, const std::string& indent = {}) const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace exobus::cli
