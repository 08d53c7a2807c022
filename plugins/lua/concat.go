package lua

import (
	"strings"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
)

// The `..` operator is one VM instruction however long its result, and
// gopher-lua gives the VM no hook for it: `s = s .. s` thirty times makes a
// gigabyte in about a hundred instructions. So the compiler never sees it:
// before compiling, every concatenation in the script is rewritten into a
// call of a Go function (concatName) that counts the result against the
// call's memory limit and budget, then builds it. A chain `a .. b .. c` is
// one call, as it is one CONCAT instruction in Lua.
//
// concatName is not a valid Lua identifier, so no script can declare a
// local that shadows it, and the global holding it is read-only.
const concatName = "weir concat"

// rewriteConcat replaces the concatenations of a chunk in place.
func rewriteConcat(stmts []ast.Stmt) {
	for _, s := range stmts {
		rwStmt(s)
	}
}

func rwStmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		rwExprs(s.Lhs)
		rwExprs(s.Rhs)
	case *ast.LocalAssignStmt:
		rwExprs(s.Exprs)
	case *ast.FuncCallStmt:
		s.Expr = rw(s.Expr)
	case *ast.DoBlockStmt:
		rewriteConcat(s.Stmts)
	case *ast.WhileStmt:
		s.Condition = rw(s.Condition)
		rewriteConcat(s.Stmts)
	case *ast.RepeatStmt:
		s.Condition = rw(s.Condition)
		rewriteConcat(s.Stmts)
	case *ast.IfStmt:
		s.Condition = rw(s.Condition)
		rewriteConcat(s.Then)
		rewriteConcat(s.Else)
	case *ast.NumberForStmt:
		s.Init = rw(s.Init)
		s.Limit = rw(s.Limit)
		s.Step = rw(s.Step)
		rewriteConcat(s.Stmts)
	case *ast.GenericForStmt:
		rwExprs(s.Exprs)
		rewriteConcat(s.Stmts)
	case *ast.FuncDefStmt:
		s.Name.Func = rw(s.Name.Func)
		s.Name.Receiver = rw(s.Name.Receiver)
		rewriteConcat(s.Func.Stmts)
	case *ast.ReturnStmt:
		rwExprs(s.Exprs)
	}
}

func rwExprs(es []ast.Expr) {
	for i, e := range es {
		es[i] = rw(e)
	}
}

func rw(e ast.Expr) ast.Expr {
	switch e := e.(type) {
	case nil:
		return nil
	case *ast.StringConcatOpExpr:
		var args []ast.Expr
		flattenConcat(e, &args)
		call := &ast.FuncCallExpr{Func: &ast.IdentExpr{Value: concatName}, Args: args, AdjustRet: true}
		call.SetLine(e.Line())
		call.SetLastLine(e.LastLine())
		call.Func.SetLine(e.Line())
		call.Func.SetLastLine(e.LastLine())
		return call
	case *ast.AttrGetExpr:
		e.Object = rw(e.Object)
		e.Key = rw(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			f.Key = rw(f.Key)
			f.Value = rw(f.Value)
		}
	case *ast.FuncCallExpr:
		e.Func = rw(e.Func)
		e.Receiver = rw(e.Receiver)
		rwExprs(e.Args)
	case *ast.LogicalOpExpr:
		e.Lhs = rw(e.Lhs)
		e.Rhs = rw(e.Rhs)
	case *ast.RelationalOpExpr:
		e.Lhs = rw(e.Lhs)
		e.Rhs = rw(e.Rhs)
	case *ast.ArithmeticOpExpr:
		e.Lhs = rw(e.Lhs)
		e.Rhs = rw(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		e.Expr = rw(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = rw(e.Expr)
	case *ast.UnaryLenOpExpr:
		e.Expr = rw(e.Expr)
	case *ast.FunctionExpr:
		rewriteConcat(e.Stmts)
	}
	return e
}

// flattenConcat collects the operands of a chain of concatenations, in
// order. An operand that can yield several values (a call, `...`) is cut
// to one, as an operand of `..` is.
func flattenConcat(e ast.Expr, args *[]ast.Expr) {
	if c, ok := e.(*ast.StringConcatOpExpr); ok {
		flattenConcat(c.Lhs, args)
		flattenConcat(c.Rhs, args)
		return
	}
	e = rw(e)
	switch x := e.(type) {
	case *ast.FuncCallExpr:
		x.AdjustRet = true
	case *ast.Comma3Expr:
		x.AdjustRet = true
	}
	*args = append(*args, e)
}

// concat is the function `..` is compiled into: strings and numbers are
// joined once their total size is counted; any other operand goes through
// its __concat metamethod, pairwise from the right as in Lua.
func (st *state) concat(L *glua.LState) int {
	n := L.GetTop()
	size := 0
	plain := true
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case glua.LString:
			size += len(v)
		case glua.LNumber:
			size += 24
		default:
			plain = false
		}
	}
	if plain {
		st.dl.alloc(L, size)
		if n == 2 {
			L.Push(glua.LString(glua.LVAsString(L.Get(1)) + glua.LVAsString(L.Get(2))))
			return 1
		}
		var b strings.Builder
		b.Grow(size)
		for i := 1; i <= n; i++ {
			b.WriteString(glua.LVAsString(L.Get(i)))
		}
		L.Push(glua.LString(b.String()))
		return 1
	}
	rhs := L.Get(n)
	for i := n - 1; i >= 1; i-- {
		lhs := L.Get(i)
		if glua.LVCanConvToString(lhs) && glua.LVCanConvToString(rhs) {
			s := glua.LVAsString(lhs) + glua.LVAsString(rhs)
			st.dl.alloc(L, len(s))
			rhs = glua.LString(s)
			continue
		}
		op := L.GetMetaField(lhs, "__concat")
		if op == glua.LNil {
			op = L.GetMetaField(rhs, "__concat")
		}
		if op.Type() != glua.LTFunction {
			L.RaiseError("cannot perform concat operation between %s and %s", lhs.Type(), rhs.Type())
		}
		L.Push(op)
		L.Push(lhs)
		L.Push(rhs)
		L.Call(2, 1)
		rhs = L.Get(-1)
		L.Pop(1)
	}
	L.Push(rhs)
	return 1
}
