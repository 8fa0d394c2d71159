// w01_compiler: a compiler / interpreter front end.
//
// Models: compilers and script interpreters (gcc, clang, CPython, Lua) that
// turn source text into a token list and an abstract syntax tree, run a few
// passes over it (constant folding replaces nodes, an interpreter evaluates
// with a symbol table, a printer rebuilds text), then drop everything and move
// on to the next translation unit. Allocation profile: very many small objects
// of mixed sizes (16-200 bytes), almost all short-lived, freed in bulk in
// roughly allocation order; single-threaded.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace {

// ---- tokens ----------------------------------------------------------------

enum class Tok : uint8_t { Ident, Number, Punct, Keyword, End };

struct Token {
  Tok kind;
  uint32_t line;
  char *text;  // own copy, like a lexer that does not intern
  uint32_t len;
  Token(Tok k, uint32_t ln, const char *s, uint32_t n) : kind(k), line(ln), text(new char[n + 1]), len(n) {
    for (uint32_t i = 0; i < n; ++i) text[i] = s[i];
    text[n] = 0;
  }
  ~Token() { delete[] text; }
  Token(const Token &) = delete;
  Token &operator=(const Token &) = delete;
  bool is(const char *s) const {
    uint32_t i = 0;
    for (; s[i]; ++i)
      if (i >= len || text[i] != s[i]) return false;
    return i == len;
  }
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::vector<Token *> lex(const std::string &src) {
  std::vector<Token *> out;
  uint32_t line = 1;
  size_t i = 0, n = src.size();
  while (i < n) {
    char c = src[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == ' ') {
      ++i;
    } else if (is_alpha(c)) {
      size_t j = i;
      while (j < n && (is_alpha(src[j]) || is_digit(src[j]))) ++j;
      std::string_view w(src.data() + i, j - i);
      Tok k = (w == "fn" || w == "let" || w == "return") ? Tok::Keyword : Tok::Ident;
      out.push_back(new Token(k, line, src.data() + i, (uint32_t)(j - i)));
      i = j;
    } else if (is_digit(c)) {
      size_t j = i;
      while (j < n && is_digit(src[j])) ++j;
      out.push_back(new Token(Tok::Number, line, src.data() + i, (uint32_t)(j - i)));
      i = j;
    } else {
      out.push_back(new Token(Tok::Punct, line, src.data() + i, 1));
      ++i;
    }
  }
  out.push_back(new Token(Tok::End, line, "", 0));
  return out;
}

// ---- syntax tree -------------------------------------------------------------

using Env = std::unordered_map<std::string, uint64_t>;

struct Node {
  virtual ~Node() = default;
  virtual uint64_t eval(Env &env) const = 0;
  virtual void print(std::string &out) const = 0;
  virtual bool is_const(uint64_t *) const { return false; }
};

struct Num final : Node {
  uint64_t v;
  explicit Num(uint64_t x) : v(x) {}
  uint64_t eval(Env &) const override { return v; }
  void print(std::string &out) const override { out += std::to_string(v % 100000); }
  bool is_const(uint64_t *x) const override {
    *x = v;
    return true;
  }
};

struct Var final : Node {
  std::string name;
  explicit Var(std::string n) : name(std::move(n)) {}
  uint64_t eval(Env &env) const override {
    auto it = env.find(name);
    return it == env.end() ? 7 : it->second;
  }
  void print(std::string &out) const override { out += name; }
};

struct Bin final : Node {
  char op;
  Node *l, *r;
  Bin(char o, Node *a, Node *b) : op(o), l(a), r(b) {}
  ~Bin() override {
    delete l;
    delete r;
  }
  static uint64_t apply(char op, uint64_t a, uint64_t b) {
    switch (op) {
      case '+': return a + b;
      case '-': return a - b;
      case '*': return a * b;
      default: return a ^ b;
    }
  }
  uint64_t eval(Env &env) const override { return apply(op, l->eval(env), r->eval(env)); }
  void print(std::string &out) const override {
    out += '(';
    l->print(out);
    out += ' ';
    out += op;
    out += ' ';
    r->print(out);
    out += ')';
  }
};

struct Call final : Node {
  std::string callee;
  std::vector<Node *> args;
  explicit Call(std::string c) : callee(std::move(c)) {}
  ~Call() override {
    for (Node *a : args) delete a;
  }
  uint64_t eval(Env &env) const override {
    uint64_t h = callee.size();
    for (Node *a : args) h = h * 1099511628211ULL + a->eval(env);
    return h;
  }
  void print(std::string &out) const override {
    out += callee;
    out += '(';
    for (size_t i = 0; i < args.size(); ++i) {
      if (i) out += ", ";
      args[i]->print(out);
    }
    out += ')';
  }
};

struct Stmt {
  std::string name;  // empty for "return"
  Node *expr;
};

struct Func {
  std::string name;
  std::vector<std::string> params;
  std::vector<Stmt> body;
  ~Func() {
    for (Stmt &s : body) delete s.expr;
  }
};

// ---- parser ------------------------------------------------------------------

struct Parser {
  const std::vector<Token *> &t;
  size_t pos = 0;
  const Token &peek() const { return *t[pos]; }
  const Token &next() { return *t[pos < t.size() - 1 ? pos++ : pos]; }
  void expect(const char *s) {
    if (peek().is(s)) ++pos;
  }

  Node *primary() {
    const Token &k = next();
    if (k.kind == Tok::Number) return new Num(strtoull(k.text, nullptr, 10));
    if (k.kind == Tok::Ident) {
      if (peek().is("(")) {
        ++pos;
        Call *c = new Call(std::string(k.text, k.len));
        while (!peek().is(")") && peek().kind != Tok::End) {
          c->args.push_back(expr());
          expect(",");
        }
        expect(")");
        return c;
      }
      return new Var(std::string(k.text, k.len));
    }
    if (k.is("(")) {
      Node *e = expr();
      expect(")");
      return e;
    }
    return new Num(0);
  }
  Node *term() {
    Node *l = primary();
    while (peek().is("*") || peek().is("^")) {
      char op = next().text[0];
      l = new Bin(op, l, primary());
    }
    return l;
  }
  Node *expr() {
    Node *l = term();
    while (peek().is("+") || peek().is("-")) {
      char op = next().text[0];
      l = new Bin(op, l, term());
    }
    return l;
  }
  Func *function() {
    expect("fn");
    Func *f = new Func;
    f->name = std::string(next().text);
    expect("(");
    while (!peek().is(")") && peek().kind != Tok::End) {
      f->params.emplace_back(next().text);
      expect(",");
    }
    expect(")");
    expect("{");
    while (!peek().is("}") && peek().kind != Tok::End) {
      Stmt s;
      if (peek().is("let")) {
        ++pos;
        s.name = next().text;
        expect("=");
      } else {
        expect("return");
      }
      s.expr = expr();
      expect(";");
      f->body.push_back(std::move(s));
    }
    expect("}");
    return f;
  }
};

// ---- passes ------------------------------------------------------------------

// Constant folding: rebuilds every folded subtree, deleting the old nodes.
Node *fold(Node *n) {
  if (Bin *b = dynamic_cast<Bin *>(n)) {
    b->l = fold(b->l);
    b->r = fold(b->r);
    uint64_t x, y;
    if (b->l->is_const(&x) && b->r->is_const(&y)) {
      Node *c = new Num(Bin::apply(b->op, x, y));
      delete b;
      return c;
    }
  } else if (Call *c = dynamic_cast<Call *>(n)) {
    for (Node *&a : c->args) a = fold(a);
  }
  return n;
}

// ---- source generator ------------------------------------------------------

struct Gen {
  bench_rng rng;
  std::string out;
  void ident(const std::vector<std::string> *scope) {
    if (scope && !scope->empty() && bench_rng_below(&rng, 4) != 0) {
      out += (*scope)[bench_rng_below(&rng, scope->size())];
      return;
    }
    // lengths 1..24: some fit in std::string's inline buffer, some do not
    size_t len = 1 + bench_rng_below(&rng, bench_rng_below(&rng, 3) == 0 ? 24 : 8);
    for (size_t i = 0; i < len; ++i) out += (char)('a' + bench_rng_below(&rng, 26));
  }
  void expr(int depth, const std::vector<std::string> &scope) {
    uint64_t r = bench_rng_below(&rng, 10);
    if (depth <= 0 || r < 3) {
      if (bench_rng_below(&rng, 2))
        out += std::to_string(bench_rng_below(&rng, 1000));
      else
        ident(&scope);
    } else if (r < 8) {
      static const char ops[] = "+-*^";
      out += '(';
      expr(depth - 1, scope);
      out += ' ';
      out += ops[bench_rng_below(&rng, 4)];
      out += ' ';
      expr(depth - 1, scope);
      out += ')';
    } else {
      ident(nullptr);
      out += '(';
      int n = (int)bench_rng_below(&rng, 4);
      for (int i = 0; i < n; ++i) {
        if (i) out += ", ";
        expr(depth - 1, scope);
      }
      out += ')';
    }
  }
  void function() {
    std::vector<std::string> scope;
    out += "fn ";
    ident(nullptr);
    out += '(';
    int np = (int)bench_rng_below(&rng, 5);
    for (int i = 0; i < np; ++i) {
      if (i) out += ", ";
      size_t start = out.size();
      ident(nullptr);
      scope.emplace_back(out.substr(start));
    }
    out += ") {\n";
    int ns = 1 + (int)bench_rng_below(&rng, 8);
    for (int i = 0; i < ns; ++i) {
      out += "  let ";
      size_t start = out.size();
      ident(nullptr);
      std::string name = out.substr(start);
      out += " = ";
      expr(1 + (int)bench_rng_below(&rng, 6), scope);
      out += ";\n";
      scope.push_back(std::move(name));
    }
    out += "  return ";
    expr(4, scope);
    out += ";\n}\n";
  }
};

}  // namespace

int main(int argc, char **argv) {
  double scale = bench_scale(argc, argv);
  long units = bench_scaled(2000, scale, 1);
  Gen gen{bench_rng_make(1), {}};
  uint64_t checksum = 0;
  size_t tokens = 0, funcs = 0;

  double t0 = bench_now();
  for (long u = 0; u < units; ++u) {
    // one translation unit: 20-60 functions of text
    gen.out.clear();
    gen.out.shrink_to_fit();
    int nf = 20 + (int)bench_rng_below(&gen.rng, 41);
    for (int i = 0; i < nf; ++i) gen.function();

    std::vector<Token *> toks = lex(gen.out);
    tokens += toks.size();
    Parser p{toks};
    std::vector<Func *> fs;
    while (p.peek().kind != Tok::End) fs.push_back(p.function());

    std::string printed;
    for (Func *f : fs) {
      for (Stmt &s : f->body) s.expr = fold(s.expr);
      Env env;
      for (size_t i = 0; i < f->params.size(); ++i) env[f->params[i]] = i * 3 + 1;
      uint64_t ret = 0;
      for (Stmt &s : f->body) {
        uint64_t v = s.expr->eval(env);
        if (s.name.empty())
          ret = v;
        else
          env[s.name] = v;
      }
      checksum = checksum * 31 + ret;
      for (Stmt &s : f->body) s.expr->print(printed);
      ++funcs;
    }
    checksum += printed.size();

    for (Func *f : fs) delete f;
    for (Token *t : toks) delete t;
  }
  double t1 = bench_now();

  char extra[96];
  snprintf(extra, sizeof extra, " units=%ld functions=%zu tokens=%zu", units, funcs, tokens);
  bench_report("compiler", 1, t1 - t0, checksum, extra);
  return 0;
}
