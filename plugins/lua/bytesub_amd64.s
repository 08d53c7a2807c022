#include "textflag.h"

// func swapBytes16(b []byte, p, r byte)
//
// Replaces every p by r in b[:len(b)&^15], sixteen bytes at a time with
// SSE2 (every amd64 CPU has it): compare each byte with p, keep p^r
// where equal, XOR it in.
TEXT ·swapBytes16(SB), NOSPLIT, $0-26
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVBLZX p+24(FP), AX
	MOVBLZX r+25(FP), DX
	XORL AX, DX
	// X1: p in every byte; X2: p^r in every byte.
	MOVQ AX, X1
	PUNPCKLBW X1, X1
	PSHUFLW $0, X1, X1
	PUNPCKLQDQ X1, X1
	MOVQ DX, X2
	PUNPCKLBW X2, X2
	PSHUFLW $0, X2, X2
	PUNPCKLQDQ X2, X2
	SHRQ $4, CX
	JZ done
	TESTQ $1, CX
	JZ pairs
	// An odd block first, then two a turn.
	MOVOU (SI), X0
	MOVO X0, X3
	PCMPEQB X1, X3
	PAND X2, X3
	PXOR X3, X0
	MOVOU X0, (SI)
	ADDQ $16, SI
	DECQ CX
	JZ done

pairs:
	MOVOU (SI), X0
	MOVOU 16(SI), X4
	MOVO X0, X3
	MOVO X4, X5
	PCMPEQB X1, X3
	PCMPEQB X1, X5
	PAND X2, X3
	PAND X2, X5
	PXOR X3, X0
	PXOR X5, X4
	MOVOU X0, (SI)
	MOVOU X4, 16(SI)
	ADDQ $32, SI
	SUBQ $2, CX
	JNZ pairs

done:
	RET
