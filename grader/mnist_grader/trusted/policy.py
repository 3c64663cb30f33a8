"""What student code may do, decided by a whitelist on its syntax tree (runs in the grading parent).

The trusted run (``mnist_grader.trusted.runner``) loads the student's *definitions* next to the hidden
tests. It must not be able to reach the machinery that decides the grade, so before anything runs,
``review`` reads each solution cell's syntax tree (it never executes it) and:

* keeps the statements that define things: ``import``/``from ... import``, ``def``, ``class``, and
  assignments to plain names (a constant table such as ``IDX_TYPES = {...}``); every other top-level
  statement (a call, a loop, a print) is dropped from the trusted run and listed, so a definition
  that depends on it fails there (and the instructor sees why);
* checks every kept statement, bodies included, against what this lab needs. Anything else is a
  *hold*: the submission's autograded scores are held at 0 and marked for manual grading, with the
  reason and line, never silently 0 and never silently graded.

The rules (a whitelist: what is not listed is held):

* imports: only the modules in ``ALLOWED_MODULES`` (and their submodules), and ``os`` for
  ``os.path`` only;
* names: a student may use the names they bind themselves, the builtins in ``ALLOWED_BUILTINS``,
  and the lab's public names (bound by the instructor's locked cells, none starting with ``_``);
* attributes: no dunder except the data-protocol methods in ``ALLOWED_DUNDERS``; none of the
  attributes that lead to frames and code objects (``gi_frame``, ``f_globals``, ``tb_frame``, ...);
  attribute chains on modules must stay inside the allowed modules and avoid ``DENIED_MODULE_ATTRS``
  (loaders of pickles and compiled code);
* assignments to attributes only through ``self``/``cls`` (the first parameter of a method): a
  student's code may shape its own objects, never a shared module or class;
* no ``global`` statements; ``open`` only for reading (no mode, or a literal mode without
  ``w``, ``a``, ``x`` or ``+``); no ``"{0.__globals__}".format``-style format strings with dunders.

Module attribute chains are resolved by importing the allowed modules in the grading parent (never
the student's code) and walking ``getattr`` while the value is a module.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import threading
import types
from dataclasses import dataclass, field

#: Modules (with their submodules) that student code may import and use.
ALLOWED_MODULES = frozenset({"numpy", "torch", "math", "gzip", "struct", "array", "collections",
                             "functools", "itertools", "typing", "pathlib"})
#: Modules a student may import for some attributes only: module -> first attributes allowed.
RESTRICTED_MODULES = {"os": frozenset({"path"})}
#: CPython 3.11 converts syntax trees with interpreter-wide state, so two threads parsing at once
#: fail with "SystemError: AST constructor recursion depth mismatch": the grading parent reads
#: notebooks in several threads, and holds this lock around every review.
SYNTAX_TREE_LOCK = threading.RLock()
#: Attributes of allowed modules that load code or reach the outside (pickles, compiled code).
DENIED_MODULE_ATTRS = frozenset({"load", "loads", "save", "hub", "jit", "compile", "library", "ops",
                                 "classes", "cpp_extension", "multiprocessing", "distributed",
                                 "ctypeslib", "f2py", "package", "_C", "_dynamo", "os", "sys",
                                 "builtins", "subprocess", "importlib", "ctypes", "gc", "inspect"})
#: Builtins a student may use.
ALLOWED_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "bytearray", "bytes", "callable", "chr", "classmethod", "complex",
    "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hasattr", "hash",
    "hex", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next",
    "object", "oct", "open", "ord", "pow", "print", "property", "range", "repr", "reversed",
    "round", "set", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "type",
    "zip", "None", "True", "False", "NotImplemented", "Ellipsis", "memoryview",
} | {name for name in dir(builtins) if name.endswith(("Error", "Exception", "Warning"))}
    | {"StopIteration"})
#: Dunder attributes a student may use: the data and module protocols the lab asks for.
ALLOWED_DUNDERS = frozenset({"__init__", "__len__", "__getitem__", "__iter__", "__next__",
                             "__call__", "__repr__", "__str__"})
#: Dunder methods a student's class may define (others change how values compare, convert or
#: dispatch, e.g. ``__eq__`` or ``__torch_function__``, which is how a fake result would pass).
DEFINABLE_DUNDERS = ALLOWED_DUNDERS | frozenset({"__contains__", "__enter__", "__exit__"})
#: Attribute prefixes of frames, code objects, generators and tracebacks.
INTERNAL_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
#: Names IPython puts into a kernel's namespace: the machinery that runs cells and keeps history.
IPYTHON_NAMES = frozenset({"get_ipython", "In", "Out", "exit", "quit"})


@dataclass
class CellReview:
    """The verdict on one solution cell.

    Args:
        code: the statements the trusted run loads (Python source).
        dropped: top-level statements left out, e.g. "line 7: a call".
        holds: reasons to hold the submission, e.g. "line 3: imports sys (not in the lab's modules)".
    """

    code: str
    dropped: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)


#: Modules whose only use in a notebook is to reach the interpreter, the kernel or the grader.
_MACHINERY_MODULES = frozenset({"sys", "builtins", "ctypes", "gc", "inspect", "importlib",
                                "IPython", "ipykernel", "signal", "traceback", "types", "code",
                                "codeop", "marshal", "pickle", "dis", "threading", "atexit",
                                "mnist_grader", "nbgrader", "sqlite3", "subprocess", "multiprocessing",
                                "socket"})


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere (parameters, assignments, imports, defs, loops, ...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def module_level_names(tree: ast.Module) -> set[str]:
    """The names a module binds in its own namespace (not inside functions or classes)."""
    names: set[str] = set()

    def scan(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return  # their bodies bind names of their own scope
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            scan(child)

    scan(tree)
    return names


def imported_modules(tree: ast.AST) -> dict[str, str]:
    """Names that import statements bind to modules: {"np": "numpy", "nn": "torch.nn", ...}.

    ``from X import Y`` counts when X.Y is itself a module (``from torch import nn``).
    """
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _module_or_none(full) is not None:
                    modules[alias.asname or alias.name] = full
    return modules


def _module_or_none(name: str) -> types.ModuleType | None:
    """The module ``name`` if it is importable and allowed to be imported here, else None.

    Only modules under the allowed tops (and ``os``) are imported: the grading parent never imports
    a module just because a student named it.
    """
    top = name.split(".")[0]
    if top not in ALLOWED_MODULES and top not in RESTRICTED_MODULES:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # not a module (a function imported with from ... import), or broken
        return None


def _module_allowed(module_name: str) -> bool:
    top = module_name.split(".")[0]
    return top in ALLOWED_MODULES


def _attribute_chain(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    """``a.b.c`` -> (Name a, ["b", "c"]); the root may be any expression."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return node, attrs[::-1]


class _Checker(ast.NodeVisitor):
    """Walks one cell's kept statements and collects hold reasons."""

    def __init__(self, own_names: set[str], modules: dict[str, str], lab_names: set[str]):
        self.own = own_names
        self.modules = modules
        self.lab = lab_names
        self.holds: list[str] = []
        self.machinery: list[str] = []  # the holds about the machinery (not about modules)
        self._method_self: list[str | None] = []  # first parameter of the enclosing method(s)
        self._in_class = False

    def hold(self, node: ast.AST, why: str, machinery: bool = True) -> None:
        """Record a reason to hold; ``machinery=False`` for a module outside the lab's list."""
        reason = f"line {getattr(node, 'lineno', '?')}: {why}"
        self.holds.append(reason)
        if machinery:
            self.machinery.append(reason)

    # ---- scopes -------------------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.bases + [k.value for k in node.keywords] + node.decorator_list:
            self.visit(expr)
        outer, self._in_class = self._in_class, True
        for stmt in node.body:
            self.visit(stmt)
        self._in_class = outer

    def _visit_function(self, node) -> None:
        for expr in node.decorator_list + node.args.defaults + \
                [d for d in node.args.kw_defaults if d is not None]:
            self.visit(expr)
        params = node.args.posonlyargs + node.args.args
        first = params[0].arg if (self._in_class and params) else None
        self._method_self.append(first)
        outer, self._in_class = self._in_class, False
        for stmt in node.body:
            self.visit(stmt)
        self._in_class = outer
        self._method_self.pop()

    def visit_FunctionDef(self, node) -> None:
        if self._in_class and _is_dunder(node.name) and node.name not in DEFINABLE_DUNDERS:
            self.hold(node, f"defines {node.name} (it changes how the tests see values)")
        self._visit_function(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(expr)
        self._method_self.append(None)
        self.visit(node.body)
        self._method_self.pop()

    # ---- statements ----------------------------------------------------------------------------
    def visit_Global(self, node: ast.Global) -> None:
        self.hold(node, f"`global {', '.join(node.names)}` rebinds names the lab shares")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.hold(node, "a relative import")
            return
        self._check_import(node, node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.hold(node, f"`from {node.module} import *`")
            elif _is_dunder(alias.name) or alias.name in DENIED_MODULE_ATTRS:
                self.hold(node, f"imports {node.module}.{alias.name}")
            elif node.module.split(".")[0] in RESTRICTED_MODULES and \
                    alias.name not in RESTRICTED_MODULES[node.module.split(".")[0]]:
                self.hold(node, f"imports {node.module}.{alias.name} (only "
                                f"{node.module}.path is allowed)")
            else:
                full = f"{node.module}.{alias.name}"
                module = _module_or_none(full)
                if module is not None and not _module_allowed(module.__name__) and \
                        node.module.split(".")[0] not in RESTRICTED_MODULES:
                    self.hold(node, f"imports module {module.__name__}", machinery=False)

    def _check_import(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in RESTRICTED_MODULES:
            return  # its uses are checked attribute by attribute
        if top not in ALLOWED_MODULES:
            self.hold(node, f"imports {name} (the lab's modules are: "
                            f"{', '.join(sorted(ALLOWED_MODULES))})",
                      machinery=name.split(".")[0] in _MACHINERY_MODULES)
        elif any(part in DENIED_MODULE_ATTRS or _is_dunder(part) for part in name.split(".")[1:]):
            self.hold(node, f"imports {name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_store(target)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_store(node.target)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_store(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_store(target)

    def _check_store(self, target: ast.expr) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_store(element)
        elif isinstance(target, ast.Starred):
            self._check_store(target.value)
        elif isinstance(target, ast.Attribute):
            root, attrs = _attribute_chain(target)
            me = self._method_self[-1] if self._method_self else None
            if not (isinstance(root, ast.Name) and me is not None and root.id == me):
                self.hold(target, f"assigns to the attribute {'.'.join(attrs)} of something other "
                                  f"than its own object (only `{me or 'self'}.x = ...` inside a "
                                  f"method is allowed)")
            self._check_attrs(target, attrs)
            if not isinstance(root, ast.Name):
                self.visit(root)
        elif isinstance(target, ast.Subscript):
            self.visit(target.value)
            self.visit(target.slice)
        elif isinstance(target, ast.Name) and _is_dunder(target.id) and \
                target.id not in DEFINABLE_DUNDERS:
            self.hold(target, f"binds {target.id} (it changes how the tests see values)")
        # any other plain Name store binds a local (or class-level) name: fine

    # ---- expressions ---------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        name = node.id
        if _is_dunder(name):
            self.hold(node, f"uses {name}")
        elif name in self.own:
            if self.modules.get(name, "").split(".")[0] in RESTRICTED_MODULES:
                self.hold(node, f"uses the module {self.modules[name]} itself (only "
                                f"{self.modules[name]}.path is allowed)")
        elif name in ALLOWED_BUILTINS:
            return
        elif name in IPYTHON_NAMES:
            self.hold(node, f"uses {name} (IPython's machinery)")
        elif hasattr(builtins, name):
            self.hold(node, f"uses the builtin {name}() (not needed in this lab)")
        elif name.startswith("_"):
            self.hold(node, f"uses {name}, a private name it did not define")
        elif name in self.lab:
            module = self.modules.get(name)
            if module and not _module_allowed(module) and \
                    module.split(".")[0] not in RESTRICTED_MODULES:
                self.hold(node, f"uses the module {module} (not one of the lab's modules)",
                          machinery=module.split(".")[0] in _MACHINERY_MODULES)
        # any other name is undefined: a NameError at run time, no hold

    def visit_Attribute(self, node: ast.Attribute) -> None:
        root, attrs = _attribute_chain(node)
        self._check_attrs(node, attrs)
        if isinstance(root, ast.Name) and root.id in self.modules and \
                (root.id in self.own or root.id in self.lab):
            self._check_module_chain(node, self.modules[root.id], attrs)
            if not _is_dunder(root.id):
                return
        self.visit(root)

    def _check_attrs(self, node: ast.AST, attrs: list[str]) -> None:
        for attr in attrs:
            if _is_dunder(attr) and attr not in ALLOWED_DUNDERS:
                self.hold(node, f"uses the attribute {attr}")
            elif attr.startswith(INTERNAL_PREFIXES):
                self.hold(node, f"uses the attribute {attr} (interpreter internals)")

    def _check_module_chain(self, node: ast.AST, module_name: str, attrs: list[str]) -> None:
        top = module_name.split(".")[0]
        if top in RESTRICTED_MODULES:
            if not attrs or attrs[0] not in RESTRICTED_MODULES[top]:
                self.hold(node, f"uses {module_name}.{'.'.join(attrs)} (only {top}.path is allowed)")
            return
        current = _module_or_none(module_name)
        path = module_name
        for attr in attrs:
            path = f"{path}.{attr}"
            if attr in DENIED_MODULE_ATTRS:
                self.hold(node, f"uses {path} (it loads code or reaches outside the lab)")
                return
            if current is None:
                return
            value = getattr(current, attr, None)
            if isinstance(value, types.ModuleType):
                if not _module_allowed(value.__name__):
                    self.hold(node, f"reaches the module {value.__name__} through {path}")
                    return
                current = value
            else:
                return

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open" and "open" not in self.own:
            self._check_open(node)
        if isinstance(func, ast.Attribute) and func.attr in ("format", "format_map") and \
                isinstance(func.value, ast.Constant) and isinstance(func.value.value, str) and \
                "__" in func.value.value:
            self.hold(node, "a format string that names a dunder attribute")
        self.generic_visit(node)

    def _check_open(self, node: ast.Call) -> None:
        mode = node.args[1] if len(node.args) > 1 else None
        for keyword in node.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
            elif keyword.arg is None:
                self.hold(node, "open(**kwargs): the mode must be visible")
                return
        if len(node.args) > 2:
            return  # buffering etc. do not change what may be written
        if mode is None:
            return
        if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
            self.hold(node, "open() with a mode that is not a literal (only reading is allowed)")
        elif set(mode.value) & set("wax+"):
            self.hold(node, f"open(..., {mode.value!r}) writes (only reading is allowed)")


def _kept_statement(stmt: ast.stmt) -> str | None:
    """None when a top-level statement is loaded by the trusted run, else what kind it is."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return None
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]

        def plain(t):
            return isinstance(t, ast.Name) or (isinstance(t, (ast.Tuple, ast.List))
                                               and all(plain(e) for e in t.elts))
        if all(plain(t) for t in targets):
            return None
        return "an assignment to something other than a name"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return None  # a docstring or a bare constant
    if isinstance(stmt, ast.Expr):
        return "an expression (e.g. a call)"
    return f"a top-level `{type(stmt).__name__.lower()}` statement"


def split_definitions(tree: ast.Module) -> tuple[list[ast.stmt], list[str]]:
    """The top-level statements the trusted run loads, and a note on each one it leaves out."""
    kept, dropped = [], []
    for stmt in tree.body:
        kind = _kept_statement(stmt)
        if kind is None:
            kept.append(stmt)
        else:
            dropped.append(f"line {stmt.lineno}: {kind}")
    return kept, dropped


def loadable(source: str, filename: str):
    """Compile what the trusted run loads of a solution cell (line numbers kept), or None."""
    try:
        kept, _ = split_definitions(ast.parse(source))
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    return compile(ast.Module(body=kept, type_ignores=[]), filename, "exec")


#: Solution cells longer than this are held (the parser's memory grows with the source).
MAX_CELL_CHARS = 200_000


def lab_context(lab_sources: list[str]) -> tuple[set[str], dict[str, str]]:
    """The names the instructor's locked cells bind, and which of them are modules."""
    names: set[str] = set()
    modules: dict[str, str] = {}
    for source in lab_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        names |= {n for n in bound_names(tree) if not n.startswith("_")}
        modules.update(imported_modules(tree))
    return names, modules


def top_level_bindings(stmt: ast.stmt) -> list[tuple[str, str | None]]:
    """(name, module it is bound to by an import, else None) for each name a statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(stmt.name, None)]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return list(imported_modules(stmt).items()) + \
            [(a.asname or a.name.split(".")[0], None) for a in stmt.names
             if (a.asname or a.name.split(".")[0]) not in imported_modules(stmt)]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
        [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
    return [(n.id, None) for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _shadowing(stmt: ast.stmt, lab_names: set[str], lab_modules: dict[str, str],
               test_names: set[str]) -> list[str]:
    """Reasons why the names a kept top-level statement binds would change what tests see."""
    reasons = []
    for name, module in top_level_bindings(stmt):
        if hasattr(builtins, name) or name in IPYTHON_NAMES or _is_dunder(name):
            reasons.append(f"line {stmt.lineno}: rebinds the builtin {name}")
        elif name in test_names:
            reasons.append(f"line {stmt.lineno}: binds {name}, a name the tests use")
        elif name in lab_names and not (module is not None and lab_modules.get(name) == module):
            reasons.append(f"line {stmt.lineno}: rebinds {name}, which the lab's own cells define")
    return reasons


def review(student_cells: dict[str, str], lab_sources: list[str],
           test_sources: list[str] = ()) -> dict[str, CellReview]:
    """Review every solution cell of one notebook; see the module docstring.

    Args:
        student_cells: {grade_id: source} of the student's solution cells (code cells only).
        lab_sources: the sources of the instructor's locked code cells, in notebook order.
        test_sources: the sources of the test cells (hidden parts included): a student's
            top-level definition may not rebind a name they bind.

    Returns:
        {grade_id: CellReview}.
    """
    lab_names, lab_modules = lab_context(lab_sources)
    test_names: set[str] = set()
    for source in test_sources:
        try:
            test_names |= module_level_names(ast.parse(source))
        except SyntaxError:
            continue
    trees: dict[str, ast.Module] = {}
    reviews: dict[str, CellReview] = {}
    for cell_id, source in student_cells.items():
        if len(source) > MAX_CELL_CHARS:
            reviews[cell_id] = CellReview("", holds=[f"the cell has {len(source)} characters "
                                                     f"(more than {MAX_CELL_CHARS})"])
            continue
        try:
            trees[cell_id] = ast.parse(source)
        except SyntaxError as err:
            reviews[cell_id] = CellReview("", dropped=[f"line {err.lineno}: a syntax error "
                                                       f"({err.msg}); nothing of this cell is loaded"])
        except (RecursionError, MemoryError, ValueError) as err:
            reviews[cell_id] = CellReview("", holds=[f"the cell cannot be parsed ({type(err).__name__})"])
    own: set[str] = set()
    modules = dict(lab_modules)
    for tree in trees.values():
        own |= bound_names(tree)
        modules.update(imported_modules(tree))
    for cell_id, tree in trees.items():
        kept, dropped = split_definitions(tree)
        checker = _Checker(own, modules, lab_names)
        for stmt in kept:
            for reason in _shadowing(stmt, lab_names, lab_modules, test_names):
                checker.holds.append(reason)
            try:
                checker.visit(stmt)
            except RecursionError:
                checker.hold(stmt, "nested too deeply to check")
        code = ast.unparse(ast.Module(body=kept, type_ignores=[])) if kept else ""
        reviews[cell_id] = CellReview(code=code, dropped=dropped, holds=checker.holds)
    return reviews


def review_extra_cells(cells: dict[str, str]) -> dict[str, list[str]]:
    """The machinery reasons (not module reasons) in code cells the trusted run does not load.

    Args:
        cells: {where: source} of a student's extra code cells.

    Returns:
        {where: reasons}, only for cells with reasons. Cells that are not plain Python (IPython
        magics) are skipped.
    """
    trees = {}
    for where, source in cells.items():
        if len(source) > MAX_CELL_CHARS:
            continue
        try:
            trees[where] = ast.parse(source)
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue
    own: set[str] = set()
    modules: dict[str, str] = {}
    for tree in trees.values():
        own |= bound_names(tree)
        modules.update(imported_modules(tree))
    found = {}
    for where, tree in trees.items():
        checker = _Checker(own, modules, set())
        for stmt in tree.body:
            try:
                checker.visit(stmt)
            except RecursionError:
                checker.hold(stmt, "nested too deeply to check")
        if checker.machinery:
            found[where] = checker.machinery
    return found
