"""Learned joint source-channel coding: deep JSCC and multi-resolution JSCC (SMRC, paper 001)."""
