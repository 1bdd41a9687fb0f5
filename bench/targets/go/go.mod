module latchbench

go 1.19
